"""N-gram counting by order on a prepared corpus: the second job of `beam_jobs.prepare` (splits,
vocabulary, n-gram counts, statistics) rerun with `--resume` on a copy of an output directory,
so that the dedup stage is reused and the difference between orders is the counting; then
`lm.ngram` on each run's tables (Kneser-Ney of every order on the whole validation split).

    python benchmarks/ngram_orders.py --base out/ja8 --input '../shared/corpora/ja/*.jsonl.gz' \
        --work out/orders --orders 3 5 8 --min-count 1,1,1,2 --json out/orders.json

Wall and CPU seconds and the peak memory of the process tree (`benchmarks/memory.py`), the
distinct and kept n-grams per order (`ngrams/_pruning.json`), the tables' bytes on disk, the
load average before and after each run (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

from benchmarks.memory import run_measured


def table_bytes(out: str) -> int:
    total = 0
    for root, _, files in os.walk(os.path.join(out, "ngrams")):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def measure(base: str, inputs: list[str], work: str, order: int, min_count: str) -> dict:
    out = os.path.join(work, f"order{order}")
    if os.path.exists(out):
        shutil.rmtree(out)
    shutil.copytree(base, out)
    cmd = [
        sys.executable,
        "-m",
        "beam_jobs.prepare",
        "--runner",
        "FnApiRunner",
        "--resume",
        "--overwrite",
        "--input",
        *inputs,
        "--output",
        out,
        "--ngram-order",
        str(order),
        "--ngram-min-count",
        min_count,
    ]
    load_before = os.getloadavg()
    counted = run_measured(cmd)
    pruning = json.load(open(os.path.join(out, "ngrams", "_pruning.json"), encoding="utf-8"))
    kn_json = os.path.join(out, "kn.json")
    scored = run_measured([sys.executable, "-m", "lm.ngram", "--data", out, "--json", kn_json])
    kn = json.load(open(kn_json, encoding="utf-8"))
    return {
        "order": order,
        "min_counts": pruning["min_counts"],
        "prepare_second_job": counted,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "tables": {
            n: {"distinct": e["distinct"], "kept": e["kept"]} for n, e in pruning["orders"].items()
        },
        "table_bytes": table_bytes(out),
        "lm_ngram": scored,
        "kneser_ney": {k: v["perplexity"] for k, v in kn.items() if k.startswith("kneser")},
        "val_tokens": next(iter(kn.values()))["tokens"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="a finished beam_jobs.prepare output")
    ap.add_argument("--input", required=True, nargs="+", help="the base run's --input")
    ap.add_argument("--work", required=True)
    ap.add_argument("--orders", type=int, nargs="+", default=[3, 5, 8])
    ap.add_argument("--min-count", default="1", help="--ngram-min-count of every run")
    ap.add_argument("--json")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    results = []
    for order in args.orders:
        r = measure(args.base, args.input, args.work, order, args.min_count)
        results.append(r)
        c = r["prepare_second_job"]
        print(
            f"order {order}: {c['seconds']:.0f} s wall, {c['cpu_seconds']:.0f} s CPU, peak "
            f"{c['peak_tree_mib']:.0f} MiB tree / {c['peak_process_mib']:.0f} MiB process, "
            f"tables {r['table_bytes'] / 2**20:.1f} MiB, kept "
            f"{sum(t['kept'] for t in r['tables'].values()):,} n-grams; KN "
            + ", ".join(f"{k[len('kneser_ney_') :]}: {v:.3f}" for k, v in r["kneser_ney"].items())
            + f" (load {r['load_average_before'][0]:.1f} -> {r['load_average_after'][0]:.1f})",
            flush=True,
        )
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
