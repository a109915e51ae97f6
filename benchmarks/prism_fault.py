"""Kill the SDK worker of an EXTERNAL pool in the middle of a step, on Prism, then resume.

    python benchmarks/prism_fault.py --input 'DIR/*' --workdir DIR --reference OUT
        [--step NearDedup/ConnectedComponents/] [-- more flags for beam_jobs.prepare]

The pool starts its workers through tests/runners/stalling_harness.py, which stops in the
first bundle running a transform whose name contains `--step` and tells its pid; this script
kills it there (SIGKILL), reports how the run ended and whether a manifest exists, then runs
the same command with `--resume` and compares every output file with `--reference` (an
undisturbed run with the same options) and checks the accounting identity per file.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.determinism import digests  # noqa: E402
from tests.runners.services import start_worker_pool, stop, worker_env  # noqa: E402


def error_line(path: Path) -> str:
    """The run's own error: the last line naming an error (Beam logs its shutdown after it)."""
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if "Error" in ln]
    return lines[-1] if lines else ""


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--reference", required=True)
    parser.add_argument("--step", default="NearDedup/ConnectedComponents/")
    args = parser.parse_args(argv)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    wrapper = work / "harness.sh"
    harness = ROOT / "tests" / "runners" / "stalling_harness.py"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{harness}" "$@"\n')
    wrapper.chmod(0o755)
    pid_file = work / "stalled.pid"
    pid_file.unlink(missing_ok=True)
    env = {**worker_env(), "STALL_AT": args.step, "STALL_PID_FILE": str(pid_file)}
    procs: list = []
    out = work / "out"
    try:
        pool = start_worker_pool(work / "pool.log", env, procs, executable=wrapper)
        cmd = [
            sys.executable,
            "-m",
            "beam_jobs.prepare",
            "--input",
            args.input,
            "--output",
            str(out),
            "--no-report",
            "--runner",
            "PrismRunner",
            "--environment_type",
            "EXTERNAL",
            "--environment_config",
            pool,
            *extra,
        ]
        started = time.perf_counter()
        with open(work / "run1.log", "wb") as log:
            run1 = subprocess.Popen(
                cmd + ["--overwrite"], env=worker_env(), stdout=log, stderr=subprocess.STDOUT
            )
            while not pid_file.exists() and run1.poll() is None:
                time.sleep(0.1)
            stalled = time.perf_counter() - started
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
            run1.wait()
        print(
            f"worker killed in {args.step} after {stalled:.1f} s; run exited {run1.returncode} "
            f"after {time.perf_counter() - started:.1f} s; manifest written: "
            f"{(out / 'manifest.json').exists()}; stage marker: "
            f"{(out / '_stages/dedup/stage.json').exists()}"
        )
        print(f"  its error: {error_line(work / 'run1.log')[:300]}")
        started = time.perf_counter()
        with open(work / "run2.log", "wb") as log:
            code = subprocess.call(
                cmd + ["--resume"], env=worker_env(), stdout=log, stderr=subprocess.STDOUT
            )
        print(f"--resume exited {code} in {time.perf_counter() - started:.1f} s")
    finally:
        for proc in procs:
            stop(proc)
    same = digests(out) == digests(Path(args.reference))
    stats = json.loads((out / "stats.json").read_text())
    identity = all(
        c["read"] == c["kept"] + c["filtered"] + c["duplicates"] + c["rejected"]
        for c in [stats, *stats["files"].values()]
    )
    print(
        f"outputs byte-identical to {args.reference}: {same} ({len(digests(out))} files); "
        f"read = kept + filtered + duplicates + rejected in total and per file: {identity} "
        f"({stats['read']} = {stats['kept']} + {stats['filtered']} + {stats['duplicates']} "
        f"+ {stats['rejected']})"
    )


if __name__ == "__main__":
    main()
