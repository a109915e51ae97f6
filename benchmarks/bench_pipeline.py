"""Throughput and peak memory of the Beam pipeline next to a plain single-process Python
script doing the same stages, on the same input, in one run.

    python benchmarks/bench_pipeline.py [--input '../shared/corpora/ja/*.jsonl.gz'] [--near-dedup]

Input MB are uncompressed JSON Lines bytes. Memory is the peak sum of resident memory over the
whole process tree (Beam's workers included), sampled every 0.1 s.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.memory import run_measured  # noqa: E402


def input_megabytes(paths: list[str]) -> float:
    total = 0
    for path in paths:
        with (gzip.open if path.endswith(".gz") else open)(path, "rb") as handle:
            while chunk := handle.read(1 << 22):
                total += len(chunk)
    return total / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=str(ROOT.parent / "shared/corpora/ja/*.jsonl.gz"))
    parser.add_argument("--near-dedup", action="store_true",
                        help="also time the full pipeline with near-dedup (the plain script "
                             "has no near-dedup, so it is reported apart)")
    args = parser.parse_args()
    paths = sorted(glob.glob(args.input))
    megabytes = input_megabytes(paths)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    beam = [sys.executable, "-m", "beam_jobs.prepare", "--input", args.input,
            "--runner", "DirectRunner", "--report", "false"]
    runs = {
        "plain Python, 1 process": [sys.executable, str(ROOT / "benchmarks/plain_prepare.py")],
        "Beam DirectRunner in-process": beam + ["--no-near-dedup"],
        "Beam DirectRunner 2 workers": beam + [
            "--no-near-dedup", "--direct_num_workers=2",
            "--direct_running_mode=multi_processing"],
    }
    if args.near_dedup:
        runs["Beam 2 workers + near-dedup"] = beam + [
            "--direct_num_workers=2", "--direct_running_mode=multi_processing"]
    print(f"input: {len(paths)} files, {megabytes:.1f} MB uncompressed, {os.cpu_count()} cores")
    print(f"{'run':32} {'seconds':>8} {'MB/s':>6} {'vs plain':>8} {'peak tree MiB':>13} "
          f"{'peak proc MiB':>13} {'procs':>5}")
    plain_seconds = None
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, cmd) in enumerate(runs.items()):
            out = os.path.join(tmp, f"run{i}")
            if cmd[1].endswith("plain_prepare.py"):
                cmd = cmd + [out, *paths]
            else:
                cmd = cmd + ["--output", out]
            result = run_measured(cmd, env=env, stdout=subprocess.DEVNULL)
            plain_seconds = plain_seconds or result["seconds"]
            print(f"{name:32} {result['seconds']:8.1f} {megabytes / result['seconds']:6.2f} "
                  f"{plain_seconds / result['seconds']:7.2f}x {result['peak_tree_mib']:13.0f} "
                  f"{result['peak_process_mib']:13.0f} {result['processes']:5d}", flush=True)


if __name__ == "__main__":
    main()
