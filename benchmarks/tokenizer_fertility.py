"""Characters per token of the trained subword tokenizers at several vocabulary sizes.

    python benchmarks/tokenizer_fertility.py [--input '../shared/corpora/ja/*.jsonl.gz']
        [--sample-mb 32] [--vocab-sizes 8000,16000,32000] [--threads 2] [--out results.json]

Every document of the input, NFKC-normalized as the pipeline does (`normalize_text`), is one
text. Each tokenizer trains in a fresh process on the same sample (`BoundedSample`: smallest
id hash first until `--sample-mb` of UTF-8), so its wall time, CPU time and peak RSS are its
own (the RSS includes the sample held in memory, as a pipeline worker holds it). Characters
per token are then counted on all documents, and on those outside the sample.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from beam_jobs.text.normalize import normalize_text  # noqa: E402
from beam_jobs.tokens.subword import load_tokenizer  # noqa: E402
from beam_jobs.tokens.train import TrainConfig  # noqa: E402

SETTINGS = {
    "sentencepiece-unigram": ("sentencepiece", "unigram"),
    "bpe": ("bpe", "unigram"),
    "sentencepiece-bpe": ("sentencepiece", "bpe"),
}
DEFAULT_SETTINGS = "sentencepiece-unigram,bpe"

CHILD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from beam_jobs.tokens.sample import BoundedSample
from beam_jobs.tokens.train import TrainConfig, train_on_sample
config = TrainConfig(**json.loads(sys.argv[2]))
sample = BoundedSample(config.sample_bytes)
with open(sys.argv[3], encoding="utf-8") as f:
    for line in f:
        doc_id, text = json.loads(line)
        sample.add_document(doc_id, text)
wall, cpu = time.perf_counter(), time.process_time()
tokenizer = train_on_sample(sample, config)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
tokenizer.save(sys.argv[4])
print(json.dumps({"train_wall_s": wall, "train_cpu_s": cpu,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def read_documents(pattern: str) -> list[tuple[str, str]]:
    docs = []
    for path in sorted(glob.glob(pattern)):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                docs.append((str(record["id"]), normalize_text(record["text"])))
    return docs


def measure(name: str, config: TrainConfig, docs_path: str, docs, sample_ids) -> dict:
    with tempfile.TemporaryDirectory() as model_dir:
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                str(ROOT),
                json.dumps(config.__dict__),
                docs_path,
                model_dir,
            ],
            capture_output=True,
            text=True,
        )
        if child.returncode:
            raise SystemExit(f"{name} {config.vocab_size}: {child.stderr.strip().splitlines()[-1]}")
        row = json.loads(child.stdout.strip().splitlines()[-1])
        tokenizer = load_tokenizer(model_dir)
    chars = tokens = held_chars = held_tokens = 0
    start = time.perf_counter()
    for k in range(0, len(docs), 256):
        batch = docs[k : k + 256]
        for (doc_id, text), ids in zip(batch, tokenizer.encode_batch([t for _, t in batch])):
            chars, tokens = chars + len(text), tokens + len(ids)
            if doc_id not in sample_ids:
                held_chars, held_tokens = held_chars + len(text), held_tokens + len(ids)
    row.update(
        setting=name,
        vocab_size=config.vocab_size,
        chars=chars,
        tokens=tokens,
        chars_per_token=chars / tokens,
        encode_s=time.perf_counter() - start,
        held_out_chars_per_token=held_chars / max(held_tokens, 1),
    )
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=str(ROOT.parent / "shared/corpora/ja/*.jsonl.gz"))
    parser.add_argument("--sample-mb", type=float, default=32.0)
    parser.add_argument("--vocab-sizes", default="8000,16000,32000")
    parser.add_argument("--settings", default=DEFAULT_SETTINGS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    docs = read_documents(args.input)
    probe = TrainConfig(sample_mb=args.sample_mb).new_sample()
    for doc_id, text in docs:
        probe.add_document(doc_id, text)
    sample_ids = {doc_id for doc_id, _ in probe.documents()}
    total_bytes = sum(len(t.encode()) for _, t in docs)
    print(
        f"{len(docs)} documents, {sum(len(t) for _, t in docs):,} characters, "
        f"{total_bytes / 1e6:.1f} MB; sample: {len(probe)} documents, "
        f"{probe.total / 1e6:.1f} MB",
        flush=True,
    )
    rows = []
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", encoding="utf-8") as f:
        for doc in docs:
            f.write(json.dumps(doc, ensure_ascii=False) + "\n")
        f.flush()
        for name in args.settings.split(","):
            kind, sp_type = SETTINGS[name]
            for vocab in map(int, args.vocab_sizes.split(",")):
                config = TrainConfig(
                    kind=kind,
                    vocab_size=vocab,
                    sentencepiece_type=sp_type,
                    num_threads=args.threads,
                    sample_mb=args.sample_mb,
                )
                row = measure(name, config, f.name, docs, sample_ids)
                rows.append(row)
                print(
                    json.dumps(
                        {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}
                    ),
                    flush=True,
                )
    if args.out:
        Path(args.out).write_text(
            json.dumps(
                {
                    "documents": len(docs),
                    "bytes": total_bytes,
                    "sample": probe.summary(),
                    "rows": rows,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
