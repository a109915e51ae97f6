"""Peak memory of a process tree, sampled from /proc (Linux): the sum over live processes,
and the largest single process."""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time


def _children(pid: int) -> list[int]:
    """Children of every thread of `pid` (a child started from a thread is listed there)."""
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out.extend(int(p) for p in f.read().split())
        except OSError:
            continue
    return out


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def tree_rss(pid: int) -> tuple[int, int, int]:
    """(sum of RSS, largest RSS, number of processes) over `pid` and its descendants."""
    stack, total, largest, count = [pid], 0, 0, 0
    while stack:
        p = stack.pop()
        rss = _rss_bytes(p)
        total, largest, count = total + rss, max(largest, rss), count + 1
        stack.extend(_children(p))
    return total, largest, count


def run_measured(cmd: list[str], interval: float = 0.1, **kwargs) -> dict:
    """Run a command; returns wall seconds, CPU seconds of the whole process tree (user +
    system, of every process that was waited for), and the peak tree / single-process RSS in
    MiB."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, **kwargs)
    peak = {"tree": 0, "single": 0, "processes": 0}
    done = threading.Event()

    def sample():
        while not done.is_set():
            total, largest, count = tree_rss(proc.pid)
            peak["tree"] = max(peak["tree"], total)
            peak["single"] = max(peak["single"], largest)
            peak["processes"] = max(peak["processes"], count)
            done.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    code = proc.wait()
    done.set()
    thread.join()
    if code != 0:
        raise RuntimeError(f"{cmd[:3]}... exited with {code}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "seconds": time.perf_counter() - start,
        "cpu_seconds": cpu,
        "peak_tree_mib": peak["tree"] / 2**20,
        "peak_process_mib": peak["single"] / 2**20,
        "processes": peak["processes"],
    }
