"""Tokenization throughput per core: our wrapper's batch encode against the library's own batch
encoding of the same texts in a bare loop, side by side in one run.

    python benchmarks/bench_tokenize.py [--input data/sample/ja_sample.jsonl.gz] [--mb 4]
        [--vocab-size 16000] [--repeats 5] [--batch 256] [--model PATH ...] [--json out.json]

One core: SentencePiece encodes with `num_threads=1` and the Hugging Face tokenizer with one
rayon thread (`RAYON_NUM_THREADS=1`, set before the library loads). Each tokenizer is trained
on the texts first (or loaded from `--model`: a `.model` or `tokenizer.json`), so both rows use
the same model on the same NFKC-normalized texts. The rows run interleaved, `--repeats` times;
the figures are medians of characters per CPU second of the process (and per wall second), and
the goal is a ratio: `ours / bare >= 0.8`.

To add a row (the pipeline's tokenize step, say), add a function `(tokenizer, batches) -> None`
to `ROWS`: it must encode every batch and keep the ids.
"""

from __future__ import annotations

import os

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # one core for Hugging Face tokenizers
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from beam_jobs.text.normalize import normalize_text  # noqa: E402
from beam_jobs.tokens.bpe import HFTokenizer  # noqa: E402
from beam_jobs.tokens.sentencepiece import SentencePieceTokenizer  # noqa: E402
from beam_jobs.tokens.subword import load_model_file  # noqa: E402
from beam_jobs.tokens.train import TrainConfig, train_tokenizer  # noqa: E402


def bare_library(tokenizer, batches) -> None:
    """The library's own batch call, nothing around it."""
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


def ours(tokenizer, batches) -> None:
    """`Tokenizer.encode_batch`: int32 numpy arrays, one per text."""
    for batch in batches:
        tokenizer.encode_batch(batch)


ROWS = {"library batch encode (bare loop)": bare_library, "ours: encode_batch": ours}
BASELINE = "library batch encode (bare loop)"


def read_texts(path: str, mb: float) -> list[str]:
    texts, size = [], 0
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            text = normalize_text(json.loads(line)["text"])
            texts.append(text)
            size += len(text.encode("utf-8"))
            if size >= mb * 1e6:
                break
    return texts


def tokenizers_for(args, texts: list[str]) -> dict:
    if args.model:
        return {Path(p).name: load_model_file(p) for p in args.model}
    out = {}
    for name, config in {
        "sentencepiece-unigram": TrainConfig(kind="sentencepiece", vocab_size=args.vocab_size),
        "bpe": TrainConfig(kind="bpe", vocab_size=args.vocab_size),
    }.items():
        start = time.perf_counter()
        out[name] = train_tokenizer(texts, config)
        print(
            f"trained {name} ({args.vocab_size}) in {time.perf_counter() - start:.1f} s", flush=True
        )
    return out


def measure(tokenizer, texts: list[str], batch: int, repeats: int) -> dict[str, dict]:
    """Characters per second of each row: by wall clock and by this process's CPU time (all
    its threads: Hugging Face encodes on its rayon thread). On a shared machine the CPU
    figure is the one other processes disturb least, so the ratio is taken on it."""
    batches = [texts[k : k + batch] for k in range(0, len(texts), batch)]
    chars = sum(map(len, texts))
    for fn in ROWS.values():  # warm up (caches, lazy model build)
        fn(tokenizer, batches[:2])
    wall: dict[str, list[float]] = {name: [] for name in ROWS}
    cpu: dict[str, list[float]] = {name: [] for name in ROWS}
    for _ in range(repeats):
        for name, fn in ROWS.items():  # interleaved: noise hits every row alike
            start, start_cpu = time.perf_counter(), time.process_time()
            fn(tokenizer, batches)
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return {
        name: {
            "wall_chars_per_s": chars / statistics.median(wall[name]),
            "cpu_chars_per_s": chars / statistics.median(cpu[name]),
        }
        for name in ROWS
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=str(ROOT / "data/sample/ja_sample.jsonl.gz"))
    parser.add_argument("--mb", type=float, default=4.0, help="UTF-8 MB of text to encode")
    parser.add_argument("--vocab-size", type=int, default=16000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=256, help="texts per batch call")
    parser.add_argument("--model", action="append", help="an existing model instead")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    texts = read_texts(args.input, args.mb)
    print(
        f"{len(texts)} texts, {sum(map(len, texts)):,} characters, one core, "
        f"median of {args.repeats}",
        flush=True,
    )
    results = {}
    for name, tokenizer in tokenizers_for(args, texts).items():
        speeds = measure(tokenizer, texts, args.batch, args.repeats)
        base = speeds[BASELINE]
        for row, speed in speeds.items():
            speed["ratio_cpu"] = speed["cpu_chars_per_s"] / base["cpu_chars_per_s"]
            speed["ratio_wall"] = speed["wall_chars_per_s"] / base["wall_chars_per_s"]
            print(
                f"{name:22s} {row:34s} {speed['cpu_chars_per_s'] / 1e6:6.2f} M chars/CPU-s "
                f"{speed['ratio_cpu']:6.3f} x bare  (wall: {speed['wall_chars_per_s'] / 1e6:6.2f}"
                f" M chars/s, {speed['ratio_wall']:6.3f} x)",
                flush=True,
            )
        results[name] = speeds
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
