"""Look inside a trained GRU: transition maps against the n-gram counts, and a hidden-unit probe.

    python -m lm.interpret --checkpoint RUN/checkpoint.pt --data DIR --out DIR
        [--chars のにはをがで] [--top 24] [--top-k 5] [--context average|bos]
        [--tokens 100000] [--probe-chars 20000]

Writes `OUT/transitions.png` (bigram P(next | prev) from DIR's train counts beside the GRU's
next-character distribution after the same characters), `OUT/probe.png` and
`OUT/interpret.json`, and prints the top-k continuations of each character for both models.
The GRU map is averaged over the occurrences of each character in DIR's validation split
(`--context average`, comparable to the counts, which average over contexts too) or taken after
`<bos> c` (`--context bos`). The data is read through the checkpoint's vocabulary.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import pyarrow.parquet as pq
import torch

from lm.checkpoint import load_model
from lm.data import iter_documents, load_manifest, shard_paths
from lm.errors import DataDirError, LMError, OptionError, exit_with
from lm.files import write_json
from lm.ngram import CountTables
from lm.plots import label, plot_probe, plot_transition_maps
from lm.probe import probe, public
from lm.transitions import (
    bigram_rows,
    chosen_ids,
    gru_rows_after_bos,
    gru_rows_averaged,
    most_frequent,
    square_map,
    top_continuations,
    total_variation,
)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m lm.interpret",
        description="Transition maps (n-gram vs GRU) and a hidden-unit probe for a checkpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--checkpoint", required=True, help="RUN/checkpoint.pt of lm.train")
    ap.add_argument("--data", required=True, help="pipeline output directory")
    ap.add_argument("--out", required=True, help="directory for the PNGs and interpret.json")
    ap.add_argument(
        "--chars",
        default=None,
        help="characters to map (a string, each character one row); default: the "
        "--top most frequent",
    )
    ap.add_argument("--top", type=int, default=24, help="how many frequent characters to map")
    ap.add_argument("--top-k", type=int, default=5, help="continuations printed per character")
    ap.add_argument(
        "--context",
        default="average",
        choices=("average", "bos"),
        help="GRU map: averaged over the validation contexts of each character, or after <bos> c",
    )
    ap.add_argument(
        "--tokens",
        type=int,
        default=100_000,
        help="validation positions read for --context average",
    )
    ap.add_argument(
        "--probe-chars",
        type=int,
        default=20_000,
        help="validation characters for the hidden-unit probe (0: no probe)",
    )
    ap.add_argument("--threads", type=int, default=1)
    return ap


def validation_texts(data_dir: str, manifest: dict, max_chars: int) -> list[str]:
    texts, used = [], 0
    for path in shard_paths(data_dir, manifest, "val"):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=64, columns=["text"]):
            for text in batch.column(0).to_pylist():
                if used >= max_chars:
                    return texts
                texts.append(text)
                used += len(text)
    return texts


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(max(args.threads, 1))
    try:
        interpret(args)
    except LMError as e:
        return exit_with(e)
    return 0


def interpret(args) -> None:
    """Everything `main` does after parsing: maps, continuations, probe, interpret.json."""
    model, vocab = load_model(args.checkpoint)
    manifest = load_manifest(args.data)
    if manifest["ngrams"]["order"] < 2:
        raise DataDirError(f"{args.data} has no bigram counts (ngrams.order 1)")
    os.makedirs(args.out, exist_ok=True)
    tables = CountTables.from_parquet(args.data, manifest, vocab, max_order=2)
    try:
        ids = (
            chosen_ids(vocab, list(args.chars))
            if args.chars
            else most_frequent(tables, vocab, args.top)
        )
    except ValueError as e:
        raise OptionError(f"--chars: {e}") from None
    names = [vocab.tokens[i] for i in ids]
    ngram = bigram_rows(tables, ids)
    if args.context == "bos":
        gru, seen = gru_rows_after_bos(model, vocab, ids), None
        gru_title = "GRU: p(次 | <bos> 前)"
    else:
        docs = iter_documents(args.data, manifest, vocab, "val")
        gru, seen = gru_rows_averaged(model, docs, ids, args.tokens)
        gru_title = f"GRU: p(次 | 文脈) の平均(検証 {args.tokens:,} 位置)"
    tv = total_variation(ngram, gru)
    plot_transition_maps(
        square_map(ngram, ids),
        square_map(gru, ids),
        names,
        os.path.join(args.out, "transitions.png"),
        ("バイグラム計数: P(次 | 前)(訓練データ)", gru_title),
    )
    report = {
        "checkpoint": os.path.abspath(args.checkpoint),
        "data": os.path.abspath(args.data),
        "context": args.context,
        "chars": names,
        "rows": [],
    }
    print(
        f"top-{args.top_k} continuations (n-gram counts | GRU, context {args.context}); "
        "TV = total variation distance between the two rows"
    )
    for r, c in enumerate(names):
        a = top_continuations(ngram[r], vocab, args.top_k)
        b = top_continuations(gru[r], vocab, args.top_k)
        fmt = lambda items: " ".join(f"{label(t)}{p:.2f}" for t, p in items) or "-"  # noqa: E731
        print(f"{label(c)}  ngram: {fmt(a):<40} | gru: {fmt(b):<40} TV {tv[r]:.2f}")
        report["rows"].append(
            {
                "char": c,
                "ngram_top": a,
                "gru_top": b,
                "total_variation": None if np.isnan(tv[r]) else float(tv[r]),
                "gru_occurrences": None if seen is None else int(seen[r]),
            }
        )
    if args.probe_chars > 0:
        texts = validation_texts(args.data, manifest, args.probe_chars)
        result = probe(model, vocab, texts, args.probe_chars)
        plot_probe(result, os.path.join(args.out, "probe.png"))
        report["probe"] = public(result)
        print(
            f"probe over {result['chars']:,} validation characters, {result['units']} units "
            "(max |r| trained vs random-init control):"
        )
        for name, f in result["features"].items():
            units = ", ".join(f"#{u['unit']} {u['r']:+.2f}" for u in f["top_units"][:3])
            print(
                f"  {name:<14} {f['max_abs_r']:.2f} vs {f['control_max_abs_r']:.2f}   "
                f"top units {units}"
            )
    write_json(os.path.join(args.out, "interpret.json"), report)
    print(
        f"wrote {args.out}/transitions.png"
        + (f", {args.out}/probe.png" if args.probe_chars > 0 else "")
        + f", {args.out}/interpret.json"
    )


if __name__ == "__main__":
    sys.exit(main())
