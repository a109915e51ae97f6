"""Tokenization throughput per core: the pipeline's tokenize step, inside a pipeline run and
called directly, against the library's own batch encoding of the same texts in a bare loop,
side by side in one run.

    python benchmarks/bench_tokenize.py [--input data/sample/ja_sample.jsonl.gz] [--mb 4]
        [--vocab-size 16000] [--repeats 5] [--model PATH ...] [--json out.json]

The texts: the first `--mb` UTF-8 MB of `--input`, run once through the pipeline (so they are
its normalized, filtered, deduplicated documents); every row then encodes exactly the
documents of that run's train/val shards, in their row order. Each tokenizer is trained on
those texts first (or loaded from `--model`: a `.model` or `tokenizer.json`). Rows:

* library batch encode (bare loop): `SentencePieceProcessor.encode(batch, num_threads=1)` or
  `Tokenizer.encode_batch_fast(batch)` over 256 texts at a time, nothing around it;
* ours: `Tokenizer.encode_batch`: the same, as int32 arrays;
* tokenize step, direct: `beam_jobs.io.token_shards.tokenize_part` on each Arrow (split, shard)
  part as `WriteSplitFn` hands it over (Arrow → strings, encode, `n_tokens`, `input_ids`);
* tokenize step, in the pipeline: a whole `beam_jobs.prepare` run (FnApiRunner, one worker,
  `--tokenizer-model`, `--token-formats parquet`), timed by the step's own counters
  (`tokens/encode_cpu_us`, `tokens/encoded_chars`: CPU time of the process around that call;
  the worker's one-time build of the model from its bytes is `tokens/model_load_cpu_us`,
  printed beside it).

One core: SentencePiece encodes with `num_threads=1` and the Hugging Face tokenizer with one
rayon thread (`RAYON_NUM_THREADS=1`, set before the library loads; the in-process runner
inherits it). The rows run interleaved, `--repeats` times; the figures are medians of
characters per CPU second of the process (and per wall second where the row has one), and the
goal is a ratio: in-pipeline step / bare >= 0.8.
"""

from __future__ import annotations

import os

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # one core for Hugging Face tokenizers
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pyarrow.parquet as pq  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from beam_jobs.io.token_shards import BATCH_DOCS, tokenize_part  # noqa: E402
from beam_jobs.prepare import run as prepare  # noqa: E402
from beam_jobs.tokens.bpe import HFTokenizer  # noqa: E402
from beam_jobs.tokens.sentencepiece import SentencePieceTokenizer  # noqa: E402
from beam_jobs.tokens.subword import load_model_file  # noqa: E402
from beam_jobs.tokens.train import TrainConfig, train_tokenizer  # noqa: E402

PIPELINE_FLAGS = [
    "--runner",
    "FnApiRunner",
    "--direct_num_workers=1",
    "--num-shards",
    "2",
    "--no-report",
    "--no-near-dedup",
]


def bare_library(tokenizer, parts) -> None:
    """The library's own batch call, nothing around it."""
    batches = [b for part in parts for b in _batches(part)]
    if isinstance(tokenizer, SentencePieceTokenizer):
        sp = tokenizer.model
        for batch in batches:
            sp.encode(batch, num_threads=1)
    elif isinstance(tokenizer, HFTokenizer):
        hf = tokenizer.model
        for batch in batches:
            hf.encode_batch_fast(batch, add_special_tokens=False)
    else:
        raise TypeError(type(tokenizer).__name__)


def ours(tokenizer, parts) -> None:
    """`Tokenizer.encode_batch`: int32 numpy arrays, one per text."""
    for part in parts:
        for batch in _batches(part):
            tokenizer.encode_batch(batch)


def tokenize_step(tokenizer, parts) -> None:
    """The pipeline's step on each part, called directly (input_ids column included)."""
    for part in parts:
        tokenize_part(part, tokenizer, input_ids=True)


def _batches(part) -> list[list[str]]:
    texts = part["text"].to_pylist()  # part of the timed work, as in the pipeline
    return [texts[k : k + BATCH_DOCS] for k in range(0, len(texts), BATCH_DOCS)]


ROWS = {
    "library batch encode (bare loop)": bare_library,
    "ours: encode_batch": ours,
    "tokenize step, direct": tokenize_step,
}
BASELINE = "library batch encode (bare loop)"
IN_PIPELINE = "tokenize step, in the pipeline"


def write_input(path: Path, src: str, mb: float) -> None:
    """The first `mb` UTF-8 MB of `src` as the pipeline's input."""
    size = 0
    with gzip.open(src, "rt", encoding="utf-8") as handle, open(path, "w") as out:
        for line in handle:
            out.write(line)
            size += len(json.loads(line)["text"].encode("utf-8"))
            if size >= mb * 1e6:
                break


def pipeline_run(work: Path, model: str | None) -> dict:
    """One prepare run on `work/input.jsonl`; its counters (the stage marker's metrics)."""
    out = work / "out"
    argv = [
        "--input",
        str(work / "input.jsonl"),
        "--output",
        str(out),
        *PIPELINE_FLAGS,
        "--overwrite",
    ]
    if model:
        argv += ["--tokenizer-model", model, "--token-formats", "parquet"]
    prepare(argv)
    marker = json.loads((out / "_stages" / "dedup" / "stage.json").read_text())
    return marker["metrics"]


def shard_parts(out: Path) -> list:
    """The run's (split, shard) parts in shard order, as the tokenize step receives them."""
    parts = []
    for split in ("train", "val"):
        for path in sorted((out / split).glob("*.parquet")):
            table = pq.read_table(path, columns=["id", "text", "n_tokens", "n_chars"])
            if table.num_rows:
                parts.append(table)
    return parts


def tokenizers_for(args, texts: list[str], work: Path) -> dict:
    """name -> (tokenizer, path of its saved model)."""
    if args.model:
        return {Path(p).name: (load_model_file(p), p) for p in args.model}
    out = {}
    for name, config in {
        "sentencepiece-unigram": TrainConfig(kind="sentencepiece", vocab_size=args.vocab_size),
        "bpe": TrainConfig(kind="bpe", vocab_size=args.vocab_size),
    }.items():
        start = time.perf_counter()
        tokenizer = train_tokenizer(texts, config)
        print(
            f"trained {name} ({args.vocab_size}) in {time.perf_counter() - start:.1f} s", flush=True
        )
        path = work / f"{name}{'.model' if config.kind == 'sentencepiece' else '.json'}"
        path.write_bytes(tokenizer.model_bytes)
        out[name] = (tokenizer, str(path))
    return out


def measure(tokenizer, model: str, parts: list, work: Path, repeats: int) -> dict[str, dict]:
    """Characters per second of each row, interleaved `repeats` times: by wall clock and by this
    process's CPU time (all its threads: Hugging Face encodes on its rayon thread). On a shared
    machine the CPU figure is the one other processes disturb least, so the ratio is taken on
    it."""
    chars = sum(sum(map(len, p["text"].to_pylist())) for p in parts)
    for fn in ROWS.values():  # warm up (caches, lazy model build)
        fn(tokenizer, parts[:1])
    wall: dict[str, list[float]] = {name: [] for name in ROWS}
    cpu: dict[str, list[float]] = {name: [] for name in [*ROWS, IN_PIPELINE]}
    loads: list[float] = []  # ms of CPU the run's workers spent building the model
    for _ in range(repeats):
        for name, fn in ROWS.items():  # interleaved: noise hits every row alike
            start, start_cpu = time.perf_counter(), time.process_time()
            fn(tokenizer, parts)
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
        counters = pipeline_run(work, model)["tokens"]
        if counters["encoded_chars"] != chars:
            raise RuntimeError(f"the run encoded {counters['encoded_chars']} chars, not {chars}")
        cpu[IN_PIPELINE].append(counters["encode_cpu_us"] / 1e6)
        loads.append(counters.get("model_load_cpu_us", 0) / 1e3)
    out = {
        name: {"cpu_chars_per_s": chars / statistics.median(times)} for name, times in cpu.items()
    }
    for name, times in wall.items():
        out[name]["wall_chars_per_s"] = chars / statistics.median(times)
    out[IN_PIPELINE]["model_load_cpu_ms"] = statistics.median(loads)  # once a worker, not timed
    return out


def report(name: str, speeds: dict) -> None:
    base = speeds[BASELINE]
    for row, speed in speeds.items():
        speed["ratio_cpu"] = speed["cpu_chars_per_s"] / base["cpu_chars_per_s"]
        wall = ""
        if "wall_chars_per_s" in speed:
            speed["ratio_wall"] = speed["wall_chars_per_s"] / base["wall_chars_per_s"]
            wall = (
                f"  (wall: {speed['wall_chars_per_s'] / 1e6:6.2f} M chars/s, "
                f"{speed['ratio_wall']:6.3f} x)"
            )
        elif "model_load_cpu_ms" in speed:
            wall = f"  (+ {speed['model_load_cpu_ms']:.1f} ms building the model, once a worker)"
        print(
            f"{name:22s} {row:34s} {speed['cpu_chars_per_s'] / 1e6:6.2f} M chars/CPU-s "
            f"{speed['ratio_cpu']:6.3f} x bare{wall}",
            flush=True,
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=str(ROOT / "data/sample/ja_sample.jsonl.gz"))
    parser.add_argument("--mb", type=float, default=4.0, help="UTF-8 MB of input text")
    parser.add_argument("--vocab-size", type=int, default=16000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", action="append", help="an existing model instead")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    logging.getLogger().setLevel(logging.ERROR)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_tokenize_") as tmp:
        work = Path(tmp)
        write_input(work / "input.jsonl", args.input, args.mb)
        pipeline_run(work, None)  # the documents every row encodes
        parts = shard_parts(work / "out")
        texts = [t for p in parts for t in p["text"].to_pylist()]
        print(
            f"{len(texts)} documents, {sum(map(len, texts)):,} characters, one core, "
            f"median of {args.repeats}",
            flush=True,
        )
        for name, (tokenizer, model) in tokenizers_for(args, texts, work).items():
            results[name] = measure(tokenizer, model, parts, work, args.repeats)
            report(name, results[name])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
