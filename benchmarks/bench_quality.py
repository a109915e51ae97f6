"""Throughput of the opt-in quality steps, one process (= one core), side by side on the same
documents, medians of interleaved repeats:

- presets: `swallow` against `hojichar` (ours: HojiChar's filters with the fast paths of
  `hojichar_fast`) and against the same HojiChar filters unmodified, run through
  `hojichar.Compose` as its users run them;
- PII: `mask_pii` (fold, regexes, checks, splice) against a bare loop of the same compiled
  regexes (`finditer`, nothing else);
- URL blocklist: `UrlBlocklist.match` with 100,000 domains against one regex alternation of
  the same domains on the host.

    python benchmarks/bench_quality.py [--chars 2000000] [--repeat 3]

Documents: every k-th document of ../shared/corpora/ja and the Aozora slice (NFKC-normalized,
about --chars characters in all), or the bundled sample where the shared corpora are absent.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hojichar import Compose, Document  # noqa: E402
from hojichar import document_filters as hf  # noqa: E402

from beam_jobs.text import pii  # noqa: E402
from beam_jobs.text.normalize import normalize_text  # noqa: E402
from beam_jobs.text.presets.hojichar_preset import hojichar_reason  # noqa: E402
from beam_jobs.text.presets.swallow import swallow_reason  # noqa: E402
from beam_jobs.text.urls import UrlBlocklist  # noqa: E402

SHARED = ROOT.parent / "shared" / "corpora"
SAMPLE = ROOT / "data" / "sample" / "ja_sample.jsonl.gz"


def load_docs(total_chars: int) -> list[str]:
    files = sorted((SHARED / "ja").glob("*.jsonl.gz")) + sorted(
        (SHARED / "literature").glob("*.jsonl.gz")
    )
    texts = []
    for path in files or [SAMPLE]:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            texts += [normalize_text(json.loads(line)["text"]) for line in handle]
    step = max(1, sum(map(len, texts)) // total_chars)
    return texts[::step]


def original_hojichar() -> Compose:
    """The preset's rules with HojiChar's own classes only, composed as its users do."""
    return Compose(
        [
            hf.AcceptJapanese(),
            hf.DiscardRareKuten(),
            hf.DocumentLengthFilter(min_doc_len=100, max_doc_len=50000),
            hf.DiscardAdultContentJa(ignore_confused=True),
            hf.DiscardAdultContentEn(),
            hf.DiscardDiscriminationContentJa(ignore_confused=True),
            hf.DiscardViolenceContentJa(ignore_confused=True),
            hf.DiscardBBSComments(),
            hf.DiscardAds(),
            hf.CharRepetitionRatioFilter(),
            hf.SingleCharacterRepetitionFilter(),
            hf.DiscardTooManyEndingEllipsis(),
            hf.DiscardTooShortLines(),
        ],
        random_state=0,
    )


def bare_pii_loop(texts: list[str]) -> None:
    patterns = [p for _, _, p, _ in pii._PASSES]
    for text in texts:
        for pattern in patterns:
            for _ in pattern.finditer(text):
                pass


def medians(jobs: dict, repeat: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(repeat):  # interleaved: machine noise hits every side alike
        for name, job in jobs.items():
            start = time.perf_counter()
            job()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def bench_presets(texts: list[str], repeat: int) -> None:
    compose = original_hojichar()
    ours = [hojichar_reason(t) for t in texts]
    theirs = [compose.apply(Document(t)).is_rejected for t in texts]
    assert [r is not None for r in ours] == theirs, "fast paths changed a decision"
    t = medians(
        {
            "swallow": lambda: [swallow_reason(x) for x in texts],
            "hojichar (ours)": lambda: [hojichar_reason(x) for x in texts],
            "hojichar Compose, unmodified": lambda: [compose.apply(Document(x)) for x in texts],
        },
        repeat,
    )
    chars = sum(map(len, texts))
    print(f"\npresets: {len(texts)} docs, {chars:,} chars (decisions identical: yes)")
    for name, sec in t.items():
        print(
            f"  {name:30s} {len(texts) / sec:8.0f} docs/s {chars / sec / 1e6:6.2f} M chars/s"
            f"  x{t['hojichar Compose, unmodified'] / sec:.1f} vs unmodified"
        )


def bench_pii(texts: list[str], repeat: int) -> None:
    mb = sum(len(t.encode()) for t in texts) / 1e6
    t = medians(
        {
            "mask_pii": lambda: [pii.mask_pii(x) for x in texts],
            "bare re loop": lambda: bare_pii_loop(texts),
        },
        repeat,
    )
    found = sum(len(pii.find_pii(x)) for x in texts)
    print(f"\nPII: {mb:.1f} MB UTF-8, {found} spans")
    for name, sec in t.items():
        print(f"  {name:30s} {mb / sec:8.1f} MB/s   {t['bare re loop'] / sec:.2f} of the bare loop")


def bench_urls(repeat: int) -> None:
    rng = random.Random(0)
    domains = [
        f"{''.join(rng.choices('abcdefghij', k=8))}{i}.{rng.choice(['com', 'jp', 'net'])}"
        for i in range(100_000)
    ]
    urls = [
        f"https://{rng.choice(['', 'www.', 'a.b.'])}"
        f"{rng.choice(domains) if rng.random() < 0.3 else 'ok' + str(i) + '.org'}/p?q={i}"
        for i in range(50_000)
    ]
    start = time.perf_counter()
    blocklist = UrlBlocklist.from_lines(domains)
    build = time.perf_counter() - start
    start = time.perf_counter()
    alternation = re.compile(r"(?:^|\.)(?:" + "|".join(map(re.escape, domains)) + r")$")
    compile_s = time.perf_counter() - start
    few = urls[:2_000]  # the alternation is too slow for all of them

    def regex_match(batch):
        for url in batch:
            alternation.search(url.split("/", 3)[2])

    t = medians(
        {
            "UrlBlocklist.match": lambda: [blocklist.match(u) for u in few],
            "regex alternation": lambda: regex_match(few),
        },
        repeat,
    )
    blocked = sum(blocklist.match(u) is not None for u in urls)
    print(
        f"\nURL blocklist: 100,000 domains (build {build:.2f} s; regex compile {compile_s:.2f} s),"
        f" {blocked:,} of {len(urls):,} URLs blocked"
    )
    for name, sec in t.items():
        print(f"  {name:30s} {len(few) / sec:10.0f} URLs/s  x{t['regex alternation'] / sec:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    texts = load_docs(args.chars)
    bench_presets(texts, args.repeat)
    bench_pii(texts, args.repeat)
    bench_urls(args.repeat)


if __name__ == "__main__":
    main()
