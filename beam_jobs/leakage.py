"""The leakage report of any output directory, old ones too: how much of the validation text
also occurs in train, and in each evaluation set given.

    python -m beam_jobs.leakage DIR [--window 50] [--sample 1] [--decontaminate NAME=PATH ...]
                                    [--json FILE]

Reads the train and val shards (the manifest's list, else every DIR/{train,val}/*.parquet)
in this process. Windows are of the dedup key (NFKC, lower-case, punctuation and whitespace
folded), as the pipeline's report; `--sample 1` (the default here) measures every window
exactly, a larger value a hash sample of them, as the pipeline does (docs/leakage.md).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys

import numpy as np
import pyarrow.parquet as pq

from beam_jobs.overlap import report
from beam_jobs.overlap.config import DEFAULT_WINDOW
from beam_jobs.overlap.evalsets import EvalIndex, read_items
from beam_jobs.overlap.fingerprints import distinct, select, window_hashes
from beam_jobs.text.normalize import dedup_key


def shard_paths(directory: str, split: str) -> list[str]:
    manifest = os.path.join(directory, "manifest.json")
    if os.path.exists(manifest):
        with open(manifest, encoding="utf-8") as handle:
            shards = json.load(handle)["splits"][split]["shards"]
        return [os.path.join(directory, s["path"]) for s in shards]
    return sorted(glob.glob(os.path.join(directory, split, "*.parquet")))


def documents(paths: list[str]):
    """(id, dedup key, chars) of every document of the shards."""
    for path in paths:
        for batch in pq.ParquetFile(path).iter_batches(columns=["id", "text"], batch_size=256):
            for doc_id, text in zip(batch["id"].to_pylist(), batch["text"].to_pylist()):
                yield doc_id, dedup_key(text), len(text)


def measure(directory: str, width: int, sample: int, index: EvalIndex | None) -> dict:
    train, found = [], []
    for _, key, _ in documents(shard_paths(directory, "train")):
        train.append(select(window_hashes(key, width), sample))
        if index is not None:
            found.append(index.hits(key)[0])
    train = distinct(np.concatenate(train)) if train else np.zeros(0, np.uint64)
    val = (
        (doc_id, select(window_hashes(key, width), sample), chars)
        for doc_id, key, chars in documents(shard_paths(directory, "val"))
    )
    out = {"leakage": report.measure(train, val, {"width": width, "sample": sample})}
    if index is not None:
        found = np.concatenate(found) if found else np.zeros(0, np.int64)
        out["decontamination"] = {"chars": index.width, "sets": index.report(found)}
    return out


def summary(result: dict) -> list[str]:
    leak = result["leakage"]
    lines = [
        f"validation: {leak['documents']} documents, {leak['windows']} windows "
        f"(sample 1/{leak['settings']['sample']} of {leak['settings']['width']}-character "
        f"windows); {leak['share_in_train']:.2%} found in train",
        f"documents above 50%: {leak['above_50']} ({leak['above_50_share_of_chars']:.2%} "
        f"of val characters); above 90%: {leak['above_90']} "
        f"({leak['above_90_share_of_chars']:.2%})",
    ]
    lines += [f"  {w['containment']:.1%}  {w['chars']:>8} chars  {w['id']}" for w in leak["worst"]]
    for name, entry in result.get("decontamination", {}).get("sets", {}).items():
        lines.append(
            f"{name}: {entry['items']} items, {entry['share_in_train']:.2%} of their "
            f"windows in train; items above 50%: {entry['items_above_50']}, above "
            f"90%: {entry['items_above_90']}"
        )
    return lines


def parse(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m beam_jobs.leakage",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("directory", help="an output directory of beam_jobs.prepare")
    parser.add_argument(
        "--window", type=int, default=DEFAULT_WINDOW, help="characters per window of the dedup key"
    )
    parser.add_argument(
        "--sample",
        type=int,
        default=1,
        help="measure the windows whose hash is 0 modulo this (1: all)",
    )
    parser.add_argument(
        "--decontaminate",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="an evaluation set: how much of it train holds",
    )
    parser.add_argument("--decontaminate-chars", type=int, default=DEFAULT_WINDOW)
    parser.add_argument("--json", help="also write the report as JSON here")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        if not (shard_paths(args.directory, "train") or shard_paths(args.directory, "val")):
            raise ValueError(f"{args.directory}: no train or val shards")
        if args.window < 8 or args.sample < 1 or args.decontaminate_chars < 8:
            raise ValueError(
                "--window and --decontaminate-chars must be at least 8, --sample at least 1"
            )
        sets = {}
        for spec in args.decontaminate:
            name, eq, path = spec.partition("=")
            if not eq or not os.path.isfile(path):
                raise ValueError(f"--decontaminate {spec!r}: give NAME=PATH of a local file")
            sets[name] = read_items(path)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    index = EvalIndex(sets, args.decontaminate_chars) if sets else None
    result = measure(args.directory, args.window, args.sample, index)
    print("\n".join(summary(result)))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=1, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
