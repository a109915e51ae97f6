"""The whole reader on the labelled development crawl, as the pipeline runs it: the identity
per file (records read = docs + skipped + filtered + rejected), the charset of every HTML
page against its label (no U+FFFD that the true text does not have), and `--lang ja`
precision and recall through the pipeline.

    python -m benchmarks.bench_web_crawl
"""

from __future__ import annotations

import collections
import gzip
import json
import pickle
import tempfile
from pathlib import Path

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from beam_jobs.io.read import ReadConfig, ReadDocuments
from beam_jobs.records import WEB_FIELDS, Event
from beam_jobs.web.page import WebConfig
from benchmarks.web_cases import load_crawl

WARC_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "corpora" / "warc"
OUTPUTS = ("docs", "skipped", "filtered", "rejected", "files")


def run(tmp: str) -> dict[str, list]:
    config = WebConfig()  # every language kept: `--lang ja` keeps the docs with lang == ja
    with beam.Pipeline(options=PipelineOptions(["--runner", "FnApiRunner"])) as p:
        read = p | ReadDocuments(ReadConfig((str(WARC_DIR / "*.warc.gz"),)), web=config)
        for name in OUTPUTS:
            (
                read[name]
                | f"All{name}" >> beam.combiners.ToList()
                | f"Save{name}"
                >> beam.Map(
                    lambda rows, name=name: Path(f"{tmp}/{name}.pkl").write_bytes(
                        pickle.dumps(rows)
                    )
                )
            )
    return {name: pickle.loads(Path(f"{tmp}/{name}.pkl").read_bytes()) for name in OUTPUTS}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = run(tmp)
    labels = {
        lab["record_id"]: lab for lab in map(json.loads, gzip.open(WARC_DIR / "labels.jsonl.gz"))
    }
    seen = collections.Counter()
    for name in OUTPUTS[:4]:
        for row in out[name]:
            seen[row.file] += 1
    print("| file | records read | docs + skipped + filtered + rejected |\n|---|---|---|")
    for f in sorted(out["files"], key=lambda f: f.path):
        print(f"| {f.path} | {f.records} | {seen[f.path]} |")
    for name in OUTPUTS[1:4]:
        reasons = collections.Counter(
            r.detail if isinstance(r, Event) else r.reason for r in out[name]
        )
        print(f"\n{name}: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))
    lang = WEB_FIELDS.names.index("lang")
    ja_kept = {d.id for d in out["docs"] if d.web[lang] == "ja"}
    true_ja = {i for i, lab in labels.items() if lab["lang"] == "ja"}
    tp = len(ja_kept & true_ja)
    print(
        f"\n--lang ja through the pipeline: precision {tp / max(1, len(ja_kept)):.4f}, "
        f"recall {tp / len(true_ja):.4f} ({len(ja_kept)} kept, {len(true_ja)} labelled ja; "
        f"Chinese pages kept as ja: {sum(labels[i]['lang'] == 'zh' for i in ja_kept)})"
    )
    truth_fffd = {r["uri_id"] for r in _payload_fffd()}
    fffd = [d.id for d in out["docs"] if "\ufffd" in d.raw_text and d.id not in truth_fffd]
    charset = WEB_FIELDS.names.index("charset")
    wrong = [
        d.id
        for d in out["docs"]
        if labels[d.id]["charset"] not in (None, "ascii")
        and not _same_codec(d.web[charset], labels[d.id]["charset"])
    ]
    print(
        f"documents: {len(out['docs'])}; with U+FFFD that their true text lacks: {len(fffd)}; "
        f"decoded with another codec than the labelled one: {len(wrong)}"
    )


def _payload_fffd() -> list[dict]:
    """Responses whose payload, decoded with the labelled charset, holds U+FFFD itself."""
    out = []
    for rec in load_crawl(WARC_DIR):
        charset = rec["label"]["charset"]
        if charset and "\ufffd" in rec["payload"].decode(charset, errors="replace"):
            rec["uri_id"] = rec["label"]["record_id"]
            out.append(rec)
    return out


def _same_codec(ours: str, label: str) -> bool:
    supersets = {"cp932": "cp932", "gb18030": "gbk", "cp949": "euc_kr", "big5hkscs": "big5"}
    return supersets.get(ours, ours).replace("-", "_") == label.replace("-", "_") or (
        ours == "ascii"
    )


if __name__ == "__main__":
    main()
