"""Progress while the pipeline runs: a periodic line on stderr from each local worker process,
and the Beam metrics that runners' monitoring UIs show.

The read stage calls `report_progress(records, nbytes)` for what it has just read (another
stage may pass `stage="clean"`, say, for a line of its own); every `CORPUS_PROGRESS_INTERVAL`
seconds (default 5) the process prints one line per stage to stderr:

    progress [pid 4242] read 12,345 docs, 45.6 MB in 15 s: 3.0 MB/s (last 5.0 s: 2.8 MB/s)

The line is for a person watching the DirectRunner in a terminal. It is printed only when
stderr is a TTY, unless `CORPUS_PROGRESS=1` forces it (`CORPUS_PROGRESS=0` silences it). The
DirectRunner's worker processes inherit the environment and stderr of the driver, so the
setting reaches them too. On Dataflow, Flink or Spark stderr goes to worker logs, which are no
TTY: the line stays off and the metrics below are the way to watch a run.

Counts are per process and per worker (module-level state: one `ProgressReporter` per stage
and process, recreated in a forked child). With `--direct_num_workers=2` two lines appear, each
for the documents that process has read; they are not summed across processes. That is
enough for a progress line and nothing else may rely on it: the numbers that count (in
`stats.json`) come from the pipeline's own combiners, never from here. Nothing here is
pickled with a DoFn, so it is safe under every runner.

Beam metrics the stages report (namespace / name), shown by the Dataflow job page ("Custom
counters"), the Flink web UI (operator metrics) and Spark's UI and metric sinks:

- counters `read/files`, `read/blocks`, `read/records`, `read/bytes`, `read/broken_files`,
  `read/duplicate_ids`;
- counter `filter/passed`, one counter `filter/<reason>` per filter reason, and the
  distribution `filter/chars` (characters of each document reaching the filters);
- counter `dedup/exact_duplicates`;
- counters `near_dedup/signatures`, `near_dedup/empty_keys`, `near_dedup/buckets`,
  `near_dedup/buckets_shared`, `near_dedup/candidate_edges`,
  `near_dedup/edges_decided_by_signature`, `near_dedup/edges_verified_exactly`,
  `near_dedup/edges_dropped_by_verification`, `near_dedup/cc_residual_edges`,
  `near_dedup/components`, `near_dedup/near_duplicates` and the distribution
  `near_dedup/bucket_size`;
- counters `spill/documents`, `spill/files`;
- counters `write/split_shards` (train and val), `write/<subdir>_shards` (duplicates,
  rejected), `write/ngram_shards`, `ngrams/distinct`.

`result.metrics().query()` on a finished `PipelineResult` returns them on any runner that
supports metrics (DirectRunner included).
"""

from __future__ import annotations

import os
import sys
import time

from beam_jobs.runtime.flags import parse_bool

ENV_ENABLE = "CORPUS_PROGRESS"  # 1/on: always; 0/off: never; unset or auto: when stderr is a TTY
ENV_INTERVAL = "CORPUS_PROGRESS_INTERVAL"  # seconds between lines of one process
DEFAULT_INTERVAL = 5.0


def progress_enabled(mode: str | None = None, stream=None) -> bool:
    """Whether to print: `mode` (or the CORPUS_PROGRESS variable) is on/off/auto; auto means
    the stream (stderr by default) is a terminal."""
    choice = parse_bool(mode if mode is not None else os.environ.get(ENV_ENABLE, "auto"))
    if choice is not None:
        return choice
    stream = sys.stderr if stream is None else stream
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _interval_from_env() -> float:
    try:
        return max(0.0, float(os.environ.get(ENV_INTERVAL, DEFAULT_INTERVAL)))
    except ValueError:
        return DEFAULT_INTERVAL


def _mb(nbytes: int) -> float:
    return nbytes / 1e6


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


class ProgressReporter:
    """Accumulates what one process has read and prints a line at most every `interval`
    seconds, from the calls it gets (no thread, no timer: a process that stops reading stops
    printing)."""

    def __init__(
        self,
        label: str = "read",
        interval: float = DEFAULT_INTERVAL,
        enabled: bool = True,
        stream=None,
        clock=time.monotonic,
    ):
        self.label, self.interval, self.enabled = label, interval, enabled
        self.stream, self.clock = stream, clock
        self.records = self.nbytes = 0
        self.started = self.last_time = None
        self.last_bytes = 0

    def update(self, records: int, nbytes: int) -> None:
        if not self.enabled:
            return
        self.records += records
        self.nbytes += nbytes
        now = self.clock()
        if self.started is None:
            self.started = self.last_time = now
        elif now - self.last_time >= self.interval:
            self.emit(now)

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        recent = max(now - self.last_time, 1e-9)
        return (
            f"progress [pid {os.getpid()}] {self.label} {self.records:,} docs, "
            f"{_mb(self.nbytes):.1f} MB in {_seconds(elapsed)}: "
            f"{_mb(self.nbytes) / elapsed:.1f} MB/s (last {_seconds(recent)}: "
            f"{_mb(self.nbytes - self.last_bytes) / recent:.1f} MB/s)"
        )

    def emit(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        if self.started is None:
            return
        stream = sys.stderr if self.stream is None else self.stream
        try:
            print(self.line(now), file=stream, flush=True)
        except (OSError, ValueError):  # a closed or broken stderr must not fail the pipeline
            self.enabled = False
        self.last_time, self.last_bytes = now, self.nbytes


_reporters: dict[str, ProgressReporter] = {}  # by stage, in this process


def _process_reporter(stage: str) -> ProgressReporter:
    reporter = _reporters.get(stage)
    if reporter is None:
        reporter = _reporters[stage] = ProgressReporter(
            label=stage, interval=_interval_from_env(), enabled=progress_enabled()
        )
    return reporter


def _forget_reporters() -> None:
    _reporters.clear()


if hasattr(os, "register_at_fork"):  # a forked worker starts its own count
    os.register_at_fork(after_in_child=_forget_reporters)


def report_progress(records: int, nbytes: int, stage: str = "read") -> None:
    """Count `records` documents and `nbytes` bytes that `stage` just handled in this
    process; prints a progress line on stderr when one is due (see the module docstring)."""
    reporter = _reporters.get(stage) or _process_reporter(stage)
    if reporter.enabled:
        reporter.update(records, nbytes)
