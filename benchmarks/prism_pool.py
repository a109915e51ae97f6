"""The scaling benchmark on Prism (`bench_scaling.py --prism`): an EXTERNAL worker pool per
run, the bytes its SDK workers exchange with Prism on the Fn API (benchmarks/
counting_harness.py), and the issue's goals checked against the measurements.

Prism starts one SDK worker per environment of the pipeline (one here), whatever
`--sdk_worker_parallelism` says: `RunPipeline` in Prism's `internal/execute.go` makes one
worker per environment id and sends the pool one `StartWorker`; that worker gets up to 8
bundles at once (`eg.SetLimit(8)`), all in the one Python process.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from beam_jobs.runtime.worker_env import WORKER_ALLOCATOR_ENV  # noqa: E402

POOL_STARTUP_S = 30
SINK = re.compile(r"^e?ref_AppliedPTransform_(.+?)_\d+_.+$")


class PrismPool:
    """`worker_pool_main` whose workers are counting harnesses; a child of this process, so
    the benchmark's sampler sees it and its workers. Use as a context manager."""

    def __init__(self, workdir: Path, parallelism: int = 2):
        self.workdir, self.parallelism = workdir, parallelism
        self.bytes_dir = workdir / "fn_bytes"
        self.log = workdir / "worker_pool.log"
        self.proc: subprocess.Popen | None = None
        self.address = ""

    def __enter__(self) -> PrismPool:
        self.bytes_dir.mkdir(parents=True, exist_ok=True)
        for old in self.bytes_dir.glob("*.json"):
            old.unlink()
        wrapper = self.workdir / "counting_harness.sh"
        wrapper.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" -m benchmarks.counting_harness "$@"\n'
        )
        wrapper.chmod(0o755)
        env = {
            **WORKER_ALLOCATOR_ENV,
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "FN_BYTES_DIR": str(self.bytes_dir),
        }
        cmd = [
            sys.executable,
            "-m",
            "apache_beam.runners.worker.worker_pool_main",
            "--service_port",
            "0",
            "--container_executable",
            str(wrapper),
        ]
        with open(self.log, "wb") as handle:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + POOL_STARTUP_S
        while time.monotonic() < deadline and self.proc.poll() is None:
            found = re.search(r"worker pool servicer at port: (\S+:\d+)", self.log.read_text())
            if found:
                self.address = found.group(1)
                return self
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"the worker pool did not start:\n{self.log.read_text()[-2000:]}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def flags(self) -> list[str]:
        return [
            "--runner",
            "PrismRunner",
            "--environment_type",
            "EXTERNAL",
            "--environment_config",
            self.address,
            "--sdk_worker_parallelism",
            str(self.parallelism),
        ]

    def workers_started(self) -> int:
        return self.log.read_text(errors="replace").count("Starting worker with command")

    def fn_bytes(self) -> dict:
        """Bytes per direction and key, summed over the workers of the run."""
        totals: dict[str, Counter] = defaultdict(Counter)
        bundles = []
        for path in self.bytes_dir.glob("*.json"):
            counts = json.loads(path.read_text())
            bundles += counts.pop("bundles", [])
            for kind, by_key in counts.items():
                totals[kind].update(by_key)
        return {**{kind: dict(c) for kind, c in totals.items()}, "bundles": bundles}


def producer(sink_id: str) -> str:
    """The transform label ('NearDedup-Buckets') that a Prism data sink belongs to."""
    if sink_id.startswith("ft_"):  # Prism's SDK-side flatten: a CoGroupByKey input, re-sent
        return "(Prism flatten copies)"
    found = SINK.match(sink_id)
    return found.group(1) if found else sink_id


def sent_by_step(fn_bytes: dict, depth: int = 1) -> dict[str, int]:
    steps: Counter = Counter()
    for sink, size in fn_bytes.get("sent", {}).items():
        steps["-".join(producer(sink).split("-")[:depth])] += size
    return dict(steps)


def report_prism(results: dict[int, dict]) -> str:
    """Per scale: Prism's and every SDK worker's peak, the bytes shuffled per document and by
    step; then the goals."""
    lines = [
        "Prism with an EXTERNAL pool (peak RSS MiB sampled every 0.1 s; shuffled = bytes "
        "the SDK workers sent to Prism on the data plane):",
        f"{'scale':>5} {'wall s':>7} {'prism MiB':>9} {'sdk workers MiB':>17} "
        f"{'pool MiB':>8} {'driver MiB':>10} {'workers':>7} {'shuffled MB':>11} "
        f"{'B/doc':>7} {'read back MB':>12} {'side in MB':>10}",
    ]
    for scale, r in sorted(results.items()):
        procs = r["processes_peak"]
        workers = [p["peak_mib"] for p in procs if p["role"] == "sdk worker"]
        fn = r.get("fn_bytes", {})
        sent = sum(fn.get("sent", {}).values())
        lines.append(
            f"{scale:>4}× {r['seconds']:>7.1f} {_peak(procs, 'prism'):>9.0f} "
            f"{' / '.join(f'{w:.0f}' for w in workers):>17} {_peak(procs, 'pool'):>8.0f} "
            f"{_peak(procs, 'driver'):>10.0f} {r.get('workers_started', 0):>7} "
            f"{sent / 1e6:>11.1f} {sent / r['stats']['read']:>7.0f} "
            f"{sum(fn.get('received', {}).values()) / 1e6:>12.1f} "
            f"{sum(fn.get('state', {}).values()) / 1e6:>10.1f}"
        )
    largest = max(results)
    steps = {s: sent_by_step(r.get("fn_bytes", {}), 2) for s, r in results.items()}
    top = sorted(steps[largest], key=lambda k: -steps[largest][k])[:12]
    lines += [
        "",
        "shuffled bytes by producing step (MB; per document in brackets):",
        f"{'step':40}" + "".join(f"{f'{s}×':>18}" for s in sorted(results)),
    ]
    for step in top:
        cells = []
        for s in sorted(results):
            size = steps[s].get(step, 0)
            cells.append(f"{size / 1e6:>9.1f} ({size / results[s]['stats']['read']:>5.0f})")
        lines.append(f"{step[:40]:40}" + "".join(cells))
    return "\n".join(lines + ["", goals(results)])


def _peak(procs: list[dict], role: str) -> float:
    return max((p["peak_mib"] for p in procs if p["role"] == role), default=0.0)


def goals(results: dict[int, dict]) -> str:
    low, high = min(results), max(results)
    a, b = results[low], results[high]
    worker = [_peak(r["processes_peak"], "sdk worker") for r in (a, b)]
    prism = [_peak(r["processes_peak"], "prism") for r in (a, b)]
    sent = [sum(r.get("fn_bytes", {}).get("sent", {}).values()) for r in (a, b)]
    ratio = b["seconds"] / a["seconds"]
    rows = [
        (f"SDK worker peak {low}×→{high}× within 15%", worker[1] / max(worker[0], 1), 1.15),
        (
            f"Prism peak growth ≤ shuffled-bytes growth ({sent[1] / max(sent[0], 1):.2f}×)",
            prism[1] / max(prism[0], 1),
            sent[1] / max(sent[0], 1),
        ),
        (f"time({high}×)/time({low}×) ≤ 4.4", ratio, 4.4),
    ]
    return "goals:\n" + "\n".join(
        f"  {name:55} {value:6.2f} {'met' if value <= bound else 'MISSED'}"
        for name, value, bound in rows
    )
