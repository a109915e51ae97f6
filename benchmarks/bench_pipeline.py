"""Throughput and peak memory of the Beam pipeline next to a plain single-process Python
script doing the same stages, on the same input, in one run.

    python benchmarks/bench_pipeline.py [--input '../shared/corpora/ja/*.jsonl.gz']
        [--near-dedup] [--repeat 3]

Input MB are uncompressed JSON Lines bytes. Memory is the peak sum of resident memory over the
whole process tree (Beam's workers included), sampled every 0.1 s. With `--repeat N` every run
is made N times, interleaved, and the median time is reported (with the range).

`--near-dedup` adds the full pipeline (near dedup on, which the plain script lacks) on the
three local modes: in-process, one worker process, two worker processes; the last lines give
two workers' speed-up over each.

`--compare ROOT` also runs every Beam row from another checkout of the project (say the commit
before a change, from `git worktree add`), interleaved with this one's, so a before/after
comparison is one run under the same load; each row then gives the ratio to its twin.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import os
import shutil
import statistics
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
    parser.add_argument(
        "--near-dedup",
        action="store_true",
        help="also time the full pipeline with near-dedup (the plain script "
        "has no near-dedup, so it is reported apart)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per row (median reported)")
    parser.add_argument(
        "--compare",
        metavar="ROOT",
        help="another checkout whose Beam rows run interleaved with these",
    )
    args = parser.parse_args()
    paths = sorted(glob.glob(args.input))
    megabytes = input_megabytes(paths)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # --report false: the form every version parses (later ones warn and read --no-report)
    beam = [
        sys.executable,
        "-m",
        "beam_jobs.prepare",
        "--input",
        args.input,
        "--runner",
        "FnApiRunner",
        "--report",
        "false",
    ]
    runs = {
        "plain Python, 1 process": [sys.executable, str(ROOT / "benchmarks/plain_prepare.py")],
        "Beam FnApiRunner in-process": beam + ["--no-near-dedup"],
        "Beam FnApiRunner 2 workers": beam
        + ["--no-near-dedup", "--direct_num_workers=2", "--direct_running_mode=multi_processing"],
    }
    if args.near_dedup:
        runs["Beam in-process + near-dedup"] = beam
        runs["Beam 1 worker + near-dedup"] = beam + [
            "--direct_num_workers=1",
            "--direct_running_mode=multi_processing",
        ]
        runs["Beam 2 workers + near-dedup"] = beam + [
            "--direct_num_workers=2",
            "--direct_running_mode=multi_processing",
        ]
    roots = {name: ROOT for name in runs}
    if args.compare:
        for name in [n for n in runs if n.startswith("Beam")]:
            runs[f"{name} [compare]"] = runs[name]
            roots[f"{name} [compare]"] = Path(args.compare).resolve()
    print(f"input: {len(paths)} files, {megabytes:.1f} MB uncompressed, {os.cpu_count()} cores")
    print(
        f"{'run':42} {'seconds':>8} {'MB/s':>6} {'vs plain':>8} {'peak tree MiB':>13} "
        f"{'peak proc MiB':>13} {'procs':>5}"
    )
    results: dict[str, list[dict]] = {name: [] for name in runs}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeat):  # interleaved, so drifting load hits every row alike
            for i, (name, cmd) in enumerate(runs.items()):
                out = os.path.join(tmp, f"run{i}-{rep}")
                if cmd[1].endswith("plain_prepare.py"):
                    cmd = cmd + [out, *paths]
                else:
                    cmd = cmd + ["--output", out]
                run_env = {**env, "PYTHONPATH": str(roots[name])}
                results[name].append(
                    run_measured(
                        cmd,
                        env=run_env,
                        cwd=roots[name],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
                shutil.rmtree(out, ignore_errors=True)
    medians = {name: statistics.median(r["seconds"] for r in rs) for name, rs in results.items()}
    cpu = {name: statistics.median(r["cpu_seconds"] for r in rs) for name, rs in results.items()}
    plain_seconds = next(iter(medians.values()))
    for name, rs in results.items():
        seconds = medians[name]
        spread = (
            f"  ({min(r['seconds'] for r in rs):.1f}-{max(r['seconds'] for r in rs):.1f})"
            if len(rs) > 1
            else ""
        )
        print(
            f"{name:42} {seconds:8.1f} {megabytes / seconds:6.2f} "
            f"{plain_seconds / seconds:7.2f}x {max(r['peak_tree_mib'] for r in rs):13.0f} "
            f"{max(r['peak_process_mib'] for r in rs):13.0f} "
            f"{max(r['processes'] for r in rs):5d}{spread}",
            flush=True,
        )
    for name in [n for n in medians if n.endswith(" [compare]")]:
        mine = name.removesuffix(" [compare]")
        print(
            f"{mine}: wall {medians[mine]:.1f} s here vs {medians[name]:.1f} s in "
            f"{args.compare} ({medians[name] / medians[mine]:.2f}x); CPU {cpu[mine]:.1f} vs "
            f"{cpu[name]:.1f} s ({cpu[name] / cpu[mine]:.2f}x)"
        )
    if args.near_dedup:
        two = medians["Beam 2 workers + near-dedup"]
        for other in ("Beam in-process + near-dedup", "Beam 1 worker + near-dedup"):
            print(
                f"2 workers vs {other.removeprefix('Beam ').removesuffix(' + near-dedup')}: "
                f"{medians[other] / two:.2f}x"
            )


if __name__ == "__main__":
    main()
