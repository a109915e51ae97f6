"""The same input several times on each runner: are the outputs byte-identical?

    python benchmarks/determinism.py --input 'DIR/*' --runs 5 [--runners prism,fnapi]
        [--workdir DIR] [--json out.json] [-- more flags for beam_jobs.prepare]

`prism` runs on Prism with an EXTERNAL worker pool (benchmarks/prism_pool.py, a fresh pool a
run); `fnapi` on the FnApiRunner with two worker processes. Runs go one after the other. For
each run: sha256 of every output file (train, val, n-grams, duplicates, rejected,
vocab.json, stats.json) and near dedup's counters (candidates, edges dropped, near
duplicates); then whether every run of every runner gave the same files, and which differ.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.prism_pool import PrismPool  # noqa: E402

FNAPI = [
    "--runner",
    "FnApiRunner",
    "--direct_num_workers=2",
    "--direct_running_mode=multi_processing",
]
OUTPUTS = ("train", "val", "ngrams", "duplicates", "rejected")
COUNTERS = (
    "candidate_edges",
    "edges_decided_by_signature",
    "edges_verified_exactly",
    "edges_dropped_by_verification",
    "near_duplicates",
    "components",
)


def digests(out: Path) -> dict[str, str]:
    files = [p for sub in OUTPUTS for p in sorted((out / sub).glob("*"))]
    files += [out / "vocab.json", out / "stats.json"]
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def near_counters(out: Path) -> dict[str, int]:
    marker = json.loads((out / "_stages" / "dedup" / "stage.json").read_text())
    values = marker.get("metrics", {}).get("near_dedup", {})
    return {name: values.get(name) for name in COUNTERS}


def one_run(runner: str, pattern: str, out: Path, extra: list[str], workdir: Path) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "beam_jobs.prepare",
        "--input",
        pattern,
        "--output",
        str(out),
        "--overwrite",
        "--no-report",
        *extra,
    ]
    env = {"PYTHONPATH": str(ROOT), "CORPUS_PROGRESS": "0"}
    log = out.parent / f"{out.name}.log"
    started = time.perf_counter()
    with open(log, "wb") as handle:
        if runner == "prism":
            with PrismPool(workdir / "pool") as pool:
                code = subprocess.call(
                    cmd + pool.flags(),
                    cwd=ROOT,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **env},
                )
        else:
            code = subprocess.call(
                cmd + FNAPI,
                cwd=ROOT,
                stdout=handle,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
            )
    if code != 0:
        raise RuntimeError(f"{runner} run failed ({code}); see {log}")
    return {
        "runner": runner,
        "seconds": time.perf_counter() - started,
        "digests": digests(out),
        "counters": near_counters(out),
    }


def compare(runs: list[dict]) -> list[str]:
    reference = runs[0]["digests"]
    lines = []
    for i, r in enumerate(runs):
        differ = sorted(
            k for k in set(reference) | set(r["digests"]) if reference.get(k) != r["digests"].get(k)
        )
        c = r["counters"]
        lines.append(
            f"{i + 1:>3} {r['runner']:6} {r['seconds']:7.1f} s  "
            + " ".join(f"{k}={c[k]}" for k in COUNTERS)
            + (f"  DIFFERS: {', '.join(differ)}" if differ else "  identical")
        )
    same = all(r["digests"] == reference for r in runs)
    lines.append(f"all {len(runs)} runs byte-identical ({len(reference)} files): {same}")
    return lines


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--runners", default="prism,fnapi")
    parser.add_argument("--workdir", default="/tmp/determinism")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    runs = []
    for runner in args.runners.split(","):
        for i in range(args.runs):
            out = workdir / f"{runner}_{i}"
            runs.append(one_run(runner, args.input, out, extra, workdir))
            print("\n".join(compare(runs)[-2:-1]), flush=True)
            if i:  # keep the first run of each runner for inspection
                shutil.rmtree(out, ignore_errors=True)
    print("\n".join(compare(runs)))
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
