"""What each quality preset removes from real text: counts by first reason with example ids,
per corpus file, and how the two presets' similar rules overlap (documents failing each rule,
whatever came first, and both); then what --pii finds there, by kind, with the most frequent
matched strings (to read for false positives).

    python benchmarks/quality_removals.py [--examples 3]

Reads ../shared/corpora/ja/*.jsonl.gz and ../shared/corpora/literature/*.jsonl.gz (the bundled
sample where they are absent), NFKC-normalized as the pipeline does by default.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from beam_jobs.text.normalize import normalize_text  # noqa: E402
from beam_jobs.text.pii import find_pii  # noqa: E402
from beam_jobs.text.presets.hojichar_preset import hojichar_failures  # noqa: E402
from beam_jobs.text.presets.swallow import swallow_failures  # noqa: E402

SHARED = ROOT.parent / "shared" / "corpora"
SAMPLE = ROOT / "data" / "sample" / "ja_sample.jsonl.gz"
# Rules of the two presets that judge the same property.
SIMILAR = [
    ("swallow_too_short", "hojichar_length"),
    ("swallow_not_japanese", "hojichar_not_japanese"),
    ("swallow_few_japanese_letters", "hojichar_not_japanese"),
    ("swallow_long_sentences", "hojichar_rare_kuten"),
    ("swallow_longest_sentence", "hojichar_rare_kuten"),
    ("swallow_ellipsis", "hojichar_ending_ellipsis"),
    ("swallow_duplicate_5gram", "hojichar_char_repetition"),
    ("swallow_top_2gram", "hojichar_single_char_repetition"),
    ("swallow_short_sentences", "hojichar_short_lines"),
]


def report(name: str, rows: list[tuple[str, list[str]]], examples: int) -> None:
    first = Counter(f[0] if f else "kept" for _, f in rows)
    ids = defaultdict(list)
    for doc_id, failures in rows:
        if failures and len(ids[failures[0]]) < examples:
            ids[failures[0]].append(doc_id)
    print(f"  {name}: " + ", ".join(f"{r} {n}" for r, n in first.most_common()))
    for reason, some in ids.items():
        print(f"      {reason}: {', '.join(some)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=3)
    args = parser.parse_args()
    files = sorted((SHARED / "ja").glob("*.jsonl.gz")) + sorted(
        (SHARED / "literature").glob("*.jsonl.gz")
    ) or [SAMPLE]
    both_fail: Counter = Counter()
    fails: Counter = Counter()
    pii_docs: Counter = Counter()
    pii_strings: dict[str, Counter] = defaultdict(Counter)
    for path in files:
        sw, hc = [], []
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                text = normalize_text(record["text"])
                s, h = swallow_failures(text), hojichar_failures(text)
                sw.append((record["id"], s))
                hc.append((record["id"], h))
                fails.update(set(s) | set(h))
                both_fail.update((a, b) for a, b in SIMILAR if a in s and b in h)
                spans = find_pii(text)
                pii_docs.update({span.kind for span in spans})
                for span in spans:
                    pii_strings[span.kind][text[span.start : span.end]] += 1
        print(
            f"\n{path.name}: {len(sw)} docs; kept by both presets "
            f"{sum(1 for (_, s), (_, h) in zip(sw, hc) if not s and not h)}"
        )
        report("swallow", sw, args.examples)
        report("hojichar", hc, args.examples)
    print("\nsimilar rules, all files: docs failing the swallow rule / the hojichar rule / both")
    for a, b in SIMILAR:
        print(f"  {a:30s} {fails[a]:5d}  {b:32s} {fails[b]:5d}  both {both_fail[(a, b)]:5d}")
    print("\nPII (all files): kind, documents, spans, most frequent matches")
    for kind, strings in pii_strings.items():
        top = ", ".join(f"{s} ({n})" for s, n in strings.most_common(8))
        print(f"  {kind}: {pii_docs[kind]} docs, {sum(strings.values())} spans: {top}")


if __name__ == "__main__":
    main()
