"""Wall time, CPU time and peak memory of a command's whole process tree (Linux /proc).

CPU is counted two ways, both lower bounds, and the larger is reported: the kernel's rusage
of reaped children (it misses descendants nobody waits for, e.g. the workers a forkserver
leaves behind at exit) and the sum over every process seen in the tree of its last sampled
user+system time (it misses what a process ran after the last sample before it exited).
Memory is the peak of the summed RSS of the live tree, as `benchmarks/memory.py`.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time

from benchmarks.memory import _children

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> tuple[int, float, int] | None:
    """(start time, user+system seconds, RSS bytes) of one process, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields[0] is the state (field 3): utime 14, stime 15, starttime 22, rss 24
    return int(fields[19]), (int(fields[11]) + int(fields[12])) / _TICK, int(fields[21]) * _PAGE


def run_tree_measured(cmd: list[str], interval: float = 0.1, **kwargs) -> dict:
    """Run `cmd` to completion; raises on a non-zero exit. Returns seconds (wall),
    cpu_seconds, peak_tree_mib and the processes seen."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, **kwargs)
    cpu: dict[tuple[int, int], float] = {}
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            stack, rss = [proc.pid], 0
            while stack:
                pid = stack.pop()
                st = _stat(pid)
                if st is not None:
                    cpu[(pid, st[0])] = st[1]
                    rss += st[2]
                stack.extend(_children(pid))
            peak[0] = max(peak[0], rss)
            done.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    code = proc.wait()
    wall = time.perf_counter() - start
    done.set()
    thread.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    reaped = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... exited with {code}")
    return {
        "seconds": wall,
        "cpu_seconds": max(reaped, sum(cpu.values())),
        "cpu_reaped": reaped,
        "cpu_sampled": sum(cpu.values()),
        "peak_tree_mib": peak[0] / 2**20,
        "processes": len(cpu),
    }
