"""How the full pipeline scales with its input: 1×, 2× and 4× the shared Japanese corpora on
the FnApiRunner (the local default engine) with two worker processes; wall time, time per
stage, peak memory of every process.

    python benchmarks/bench_scaling.py [--scales 1,2,4] [--peers] [--json out.json]
    python benchmarks/bench_scaling.py --prism     # on Prism, EXTERNAL pool (prism_pool.py)

The grown corpus is written to a temporary directory. Scale k holds the original files and
k-1 generated copies of each; a copy replaces every document of the original by either
- a near duplicate (probability `--near-share`): a new id and 1-5 random character edits
  (substitution, insertion or deletion), so exact dedup misses it and near dedup must find it;
- fresh text: the same number of paragraphs as the original, drawn at random from all the
  file's documents, so the amount of distinct text grows with the scale.
Scale 2k contains scale k, so the ratios compare the same documents plus more.

Wall time is the whole `python -m beam_jobs.prepare` process, start-up included. Time per
stage comes from the runner's own monitoring: the SDK harness's state sampler reports
`beam:metric:ptransform_execution_time:total_msecs:v1` for every transform; those are summed
over the workers and grouped by the top-level step label (so two busy workers give up to
twice the wall time). Each Beam job the run starts is timed apart (the pipeline may run more
than one). Memory is sampled every 0.1 s from /proc by `benchmarks/memory.py`: the peak sum
over the process tree, and the peak of each process (driver, SDK workers). With `--peers`,
two bare Beam pipelines (`benchmarks/beam_peers.py`: read only, read and one shuffle) run on
the same input and runner flags, and their memory is reported beside the pipeline's.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.beam_peers import MODES as PEER_MODES  # noqa: E402
from benchmarks.memory import _children, _rss_bytes, run_measured  # noqa: E402
from benchmarks.prism_pool import PrismPool, report_prism  # noqa: E402

DEFAULT_INPUT = str(ROOT.parent / "shared" / "corpora" / "ja" / "*.jsonl.gz")
RUNNER = [
    "--runner",
    "FnApiRunner",
    "--direct_num_workers=2",
    "--direct_running_mode=multi_processing",
]
TIME_METRIC = "ptransform_execution_time:total_msecs"


# ---- growing the corpus ---------------------------------------------------------------


def read_records(path: str, fraction: float) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    return records[: max(1, int(len(records) * fraction))]


def perturb(text: str, rng: random.Random) -> str:
    """1-5 random character edits: substitution, insertion or deletion."""
    chars = list(text)
    for _ in range(rng.randint(1, 5)):
        if not chars:
            break
        i, op = rng.randrange(len(chars)), rng.randrange(3)
        if op == 0:
            chars[i] = rng.choice(chars)
        elif op == 1:
            chars.insert(i, rng.choice(chars))
        elif len(chars) > 1:
            del chars[i]
    return "".join(chars)


def paragraphs(text: str) -> list[str]:
    parts = [p for p in text.split("\n\n") if p.strip()]
    return parts if len(parts) > 1 else [p for p in text.split("\n") if p.strip()] or [text]


def grown_copy(records: list[dict], copy: int, near_share: float, seed: str) -> list[dict]:
    rng = random.Random(f"{seed}:{copy}")
    split = [paragraphs(r["text"]) for r in records]
    pool = [p for parts in split for p in parts]
    out = []
    for record, parts in zip(records, split):
        if rng.random() < near_share:
            out.append(
                {**record, "id": f"{record['id']}#near{copy}", "text": perturb(record["text"], rng)}
            )
        else:
            text = "\n\n".join(rng.choice(pool) for _ in parts)
            out.append({**record, "id": f"{record['id']}#fresh{copy}", "text": text})
    return out


def write_records(path: Path, records: list[dict]) -> None:
    with gzip.GzipFile(path, "wb", mtime=0) as handle:
        for record in records:
            handle.write((json.dumps(record, ensure_ascii=False) + "\n").encode())


def grow_corpus(
    pattern: str, scales: list[int], fraction: float, near_share: float, workdir: Path
) -> dict[int, Path]:
    """A directory of input files per scale (symlinks into one pool of generated files)."""
    pool = workdir / "pool"
    pool.mkdir(parents=True, exist_ok=True)  # a reused --workdir: files are written anew
    files: dict[int, list[Path]] = defaultdict(list)
    for source in sorted(glob.glob(pattern)):
        name = Path(source).name.removesuffix(".jsonl.gz")
        records = read_records(source, fraction)
        original = pool / f"{name}.jsonl.gz"
        if fraction >= 1:
            shutil.copyfile(source, original)
        else:
            write_records(original, records)
        files[0].append(original)
        for copy in range(1, max(scales)):
            path = pool / f"{name}.copy{copy}.jsonl.gz"
            write_records(path, grown_copy(records, copy, near_share, name))
            files[copy].append(path)
    dirs = {}
    for scale in scales:
        d = workdir / f"input_{scale}x"
        d.mkdir(exist_ok=True)
        for copy in range(scale):
            for path in files[copy]:
                link = d / path.name
                if not link.is_symlink():
                    link.symlink_to(path)
        dirs[scale] = d
    return dirs


def input_bytes(directory: Path) -> tuple[int, int]:
    """(compressed, uncompressed) bytes of the input files."""
    packed = unpacked = 0
    for path in sorted(directory.iterdir()):
        packed += path.stat().st_size
        with gzip.open(path, "rb") as handle:
            while chunk := handle.read(1 << 22):
                unpacked += len(chunk)
    return packed, unpacked


# ---- measuring one run --------------------------------------------------------------


class ProcessPeaks:
    """Peak RSS of every process below this one, with what it is, sampled every 0.1 s."""

    def __init__(self, interval: float = 0.1):
        self.interval, self.peaks, self.roles = interval, defaultdict(int), {}
        self.cpu: dict[int, float] = {}  # user + system seconds, as last seen
        self.series: dict[int, list] = defaultdict(list)  # (epoch s, MiB) when it moved 1%
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        me = os.getpid()
        while not self.done.is_set():
            stack = list(_children(me))
            while stack:
                pid = stack.pop()
                rss = _rss_bytes(pid)
                self.peaks[pid] = max(self.peaks[pid], rss)
                self._record(pid, rss / 2**20)
                # The last role seen: a new process shows its parent's command until it execs.
                self.roles[pid] = _role(pid) or self.roles.get(pid, "?")
                self.cpu[pid] = _cpu_seconds(pid) or self.cpu.get(pid, 0.0)
                stack.extend(_children(pid))
            self.done.wait(self.interval)

    def _record(self, pid: int, mib: float) -> None:
        series = self.series[pid]
        if not series or abs(mib - series[-1][1]) > 0.01 * series[-1][1]:
            series.append((round(time.time(), 2), round(mib, 1)))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()

    def report(self) -> list[dict]:
        rows = [
            {
                "pid": pid,
                "role": self.roles.get(pid, "?"),
                "peak_mib": peak / 2**20,
                "cpu_s": self.cpu.get(pid, 0.0),
                "series": self.series.get(pid, []),
            }
            for pid, peak in self.peaks.items()
            if peak
        ]
        return sorted(rows, key=lambda r: r["pid"])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (0 when it is gone): unlike wall time, not
    inflated when other work on the machine competes for the cores."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _role(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
    program = cmd.split(" ", 1)[0].rsplit("/", 1)[-1]
    if program in ("sh", "bash", "dash"):
        return "shell"  # the runner starts each SDK worker through `sh -c`
    if "worker_pool_main" in cmd:
        return "pool"
    if "sdk_worker_main" in cmd or "SdkHarness" in cmd or "counting_harness" in cmd:
        return "sdk worker"
    if "bench_scaling" in cmd or "beam_peers" in cmd:
        return "driver"
    return program


def run_with_peaks(cmd: list[str], log: Path, env: dict) -> dict:
    """Run a command with its output in `log`; wall time and every process's peak memory."""
    with open(log, "wb") as handle, ProcessPeaks() as peaks:
        try:
            measured = run_measured(
                cmd, cwd=ROOT, env={**os.environ, **env}, stdout=handle, stderr=subprocess.STDOUT
            )
        except RuntimeError:
            sys.stderr.write(log.read_text(errors="replace")[-4000:])
            raise
    measured["processes_peak"] = peaks.report()
    return measured


def measure(input_dir: Path, output: Path, extra: list[str], runner: list[str] = RUNNER) -> dict:
    timings = output.parent / f"{output.name}.timings.json"
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.bench_scaling",
        "--child",
        str(timings),
        "--",
        "--input",
        str(input_dir / "*"),
        "--output",
        str(output),
        "--overwrite",
        *runner,
        *extra,
    ]
    measured = run_with_peaks(
        cmd, output.parent / f"{output.name}.log", {"PYTHONPATH": str(ROOT), "CORPUS_PROGRESS": "0"}
    )
    measured["jobs"] = json.loads(timings.read_text())
    measured["stats"] = json.loads((output / "stats.json").read_text())
    return measured


def measure_peer(mode: str, input_dir: Path, output: Path) -> dict:
    """A bare Beam pipeline (`benchmarks/beam_peers.py`) on the same input and runner flags."""
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.beam_peers",
        mode,
        "--input",
        str(input_dir / "*"),
        "--output",
        str(output),
        *RUNNER,
    ]
    return run_with_peaks(cmd, output.parent / f"{output.name}.log", {"PYTHONPATH": str(ROOT)})


def _driver_and_worker(run) -> str:
    return f"{peak_by_role(run, 'driver'):>14.0f} / {peak_by_role(run, 'sdk worker'):<5.0f}"


def peak_by_role(processes: list[dict], role: str) -> float:
    return max((p["peak_mib"] for p in processes if p["role"] == role), default=0.0)


def child(timings_path: str, argv: list[str]) -> int:
    """Runs `beam_jobs.prepare` here, recording each Beam job's wall time and the runner's
    per-transform execution time (the only thing added to a plain run)."""
    import apache_beam as beam

    jobs, depth, original = [], [0], beam.Pipeline.run

    def timed_run(self, *args, **kwargs):
        depth[0] += 1
        started = time.perf_counter()
        try:
            result = original(self, *args, **kwargs)
            if depth[0] == 1:
                result.wait_until_finish()
                jobs.append({"seconds": time.perf_counter() - started, "steps": step_msecs(result)})
            return result
        finally:
            depth[0] -= 1

    beam.Pipeline.run = timed_run
    from beam_jobs.prepare import main as prepare_main

    code = prepare_main(argv)
    Path(timings_path).write_text(json.dumps(jobs))
    return code


def step_msecs(result) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    try:
        counters = result.monitoring_metrics().query()["counters"]
    except Exception:  # a runner without monitoring metrics: wall time only
        return {}
    for counter in counters:
        if TIME_METRIC in str(counter.key.metric):
            totals[counter.key.step] += counter.committed or 0
    return dict(totals)


def by_stage(jobs: list[dict]) -> dict[str, float]:
    """Seconds per top-level step, summed over the jobs and the workers."""
    stages: dict[str, float] = defaultdict(float)
    for job in jobs:
        for step, msecs in job["steps"].items():
            stages[step.split("/", 1)[0]] += msecs / 1000
    return dict(stages)


# ---- the report ----------------------------------------------------------------------


def report(results: dict[int, dict]) -> str:
    base = results[min(results)]
    lines = [
        f"{'scale':>5} {'input MB':>9} {'docs':>8} {'dups exact/near':>16} "
        f"{'wall s':>7} {'ratio':>6} {'jobs s':>13} {'tree MiB':>9} {'driver MiB':>10} "
        f"{'worker MiB':>10} {'procs':>5}"
    ]
    for scale, r in sorted(results.items()):
        stats = r["stats"]
        kinds = stats.get("duplicates_by_kind", {})
        jobs = " + ".join(f"{j['seconds']:.0f}" for j in r["jobs"])
        lines.append(
            f"{scale:>4}× {r['input_mb']:>9.1f} {stats['read']:>8} "
            f"{kinds.get('exact', 0):>8}/{kinds.get('near', 0):<7} {r['seconds']:>7.1f} "
            f"{r['seconds'] / base['seconds']:>6.2f} {jobs:>13} {r['peak_tree_mib']:>9.0f} "
            f"{peak_by_role(r['processes_peak'], 'driver'):>10.0f} "
            f"{peak_by_role(r['processes_peak'], 'sdk worker'):>10.0f} "
            f"{r['processes']:>5}"
        )
    stages = {scale: by_stage(r["jobs"]) for scale, r in results.items()}
    largest = stages[max(stages)]
    names = sorted(
        (s for s in largest if largest[s] >= 0.01 * sum(largest.values())),
        key=lambda s: -largest[s],
    )
    rest = {scale: sum(v for s, v in st.items() if s not in names) for scale, st in stages.items()}
    lines += [
        "",
        "time per stage (worker seconds, summed over workers; ratio to 1×; stages "
        "under 1% of the total at the largest scale are summed as 'other'):",
        f"{'stage':28}" + "".join(f"{f'{s}×':>16}" for s in sorted(results)),
    ]
    for name in names:
        cells = []
        for scale in sorted(results):
            seconds, first = stages[scale].get(name, 0), stages[min(results)].get(name, 0)
            ratio = f"({seconds / first:.2f})" if first >= 0.05 else ""
            cells.append(f"{seconds:>8.1f} {ratio:>7}")
        lines.append(f"{name[:28]:28}" + "".join(cells))
    lines.append(f"{'other':28}" + "".join(f"{rest[s]:>8.1f} {'':>7}" for s in sorted(rest)))
    if all("peers" in r for r in results.values()):
        lines += ["", memory_against_peers(results)]
    lines += [
        "",
        "peak memory (MiB) and CPU seconds per process (the driver, then SDK workers "
        "by start order; each Beam job starts its own workers):",
    ]
    for scale, r in sorted(results.items()):
        procs = [p for p in r["processes_peak"] if p["role"] in ("driver", "sdk worker")]
        if all("cpu_s" in p for p in procs):  # results of an older version have no CPU times
            lines.append(
                f"{scale:>4}× "
                + ", ".join(
                    f"{p['role']} {p['peak_mib']:.0f} MiB/{p['cpu_s']:.0f} s" for p in procs
                )
                + f"; CPU total {sum(p['cpu_s'] for p in procs):.0f} s"
            )
        else:
            lines.append(
                f"{scale:>4}× " + ", ".join(f"{p['role']} {p['peak_mib']:.0f} MiB" for p in procs)
            )
    return "\n".join(lines)


def memory_against_peers(results: dict[int, dict]) -> str:
    """Peak driver / largest worker of the pipeline and of the bare Beam peers, and how much
    each grows per 1× of input between the smallest and the largest scale."""
    runs = {
        "pipeline": lambda r: r["processes_peak"],
        **{
            f"peer: {mode}": (lambda r, m=mode: r["peers"][m]["processes_peak"])
            for mode in PEER_MODES
        },
    }
    lines = [
        "peak memory against bare Beam pipelines on the same runner and input (MiB, "
        "driver / largest worker; benchmarks/beam_peers.py):",
        f"{'scale':>5} " + "".join(f"{name:>22}" for name in runs),
    ]
    for scale, r in sorted(results.items()):
        lines.append(f"{scale:>4}× " + "".join(_driver_and_worker(get(r)) for get in runs.values()))
    low, high = min(results), max(results)
    if high > low:
        growth = []
        for get in runs.values():
            d, w = (
                (peak_by_role(get(results[high]), role) - peak_by_role(get(results[low]), role))
                / (high - low)
                for role in ("driver", "sdk worker")
            )
            growth.append(f"{d:>+14.0f} / {w:<+5.0f}")
        lines.append(f"{'per 1×':>5} " + "".join(growth))
    return "\n".join(lines)


def measure_scale(input_dir: Path, workdir: Path, scale: int, args) -> dict:
    """One run at one scale; on Prism with a fresh worker pool, as each local run starts its
    own worker processes."""
    output = workdir / f"out_{scale}x"
    if not args.prism:
        return measure(input_dir, output, args.extra)
    with PrismPool(workdir / f"pool_{scale}x") as pool:
        measured = measure(input_dir, output, args.extra, pool.flags())
    measured.update(fn_bytes=pool.fn_bytes(), workers_started=pool.workers_started())
    return measured


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        sys.exit(child(sys.argv[2], sys.argv[4:] if sys.argv[3] == "--" else sys.argv[3:]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=DEFAULT_INPUT, help="the 1× corpus (glob, .jsonl.gz)")
    parser.add_argument("--scales", default="1,2,4")
    parser.add_argument(
        "--fraction",
        type=float,
        default=1.0,
        help="use the first share of every file (for a quick check)",
    )
    parser.add_argument(
        "--near-share",
        type=float,
        default=0.5,
        help="share of generated documents that are near duplicates",
    )
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--workdir", help="keep the grown corpus and outputs here")
    parser.add_argument("--from-json", help="print the report of an earlier --json and stop")
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also measure bare Beam pipelines on the same input (memory)",
    )
    parser.add_argument(
        "--prism",
        action="store_true",
        help="run on Prism with an EXTERNAL pool (benchmarks/prism_pool.py)",
    )
    parser.add_argument("extra", nargs="*", help="more flags for beam_jobs.prepare (after --)")
    args = parser.parse_args()
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        results = {int(scale): r for scale, r in results.items()}
        print(report(results))
        if all("fn_bytes" in r for r in results.values()):
            print("\n" + report_prism(results))
        return
    scales = sorted({int(s) for s in args.scales.split(",")})
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_scaling_"))
    try:
        started = time.perf_counter()
        dirs = grow_corpus(args.input, scales, args.fraction, args.near_share, workdir)
        runner = ["--runner", "PrismRunner", "(EXTERNAL pool)"] if args.prism else RUNNER
        print(
            f"grew the corpus in {time.perf_counter() - started:.0f} s; {os.cpu_count()} "
            f"cores; runner flags: {' '.join(runner)} {' '.join(args.extra)}",
            flush=True,
        )
        results = {}
        for scale in scales:
            packed, unpacked = input_bytes(dirs[scale])
            results[scale] = measure_scale(dirs[scale], workdir, scale, args)
            results[scale].update(input_mb=unpacked / 1e6, input_gz_mb=packed / 1e6)
            if args.peers:
                results[scale]["peers"] = {
                    mode: measure_peer(mode, dirs[scale], workdir / f"peer_{mode}_{scale}x")
                    for mode in PEER_MODES
                }
            print(
                f"{scale}×: {unpacked / 1e6:.1f} MB in {results[scale]['seconds']:.1f} s",
                flush=True,
            )
        print()
        print(report(results))
        if args.prism:
            print("\n" + report_prism(results))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
