"""An SDK harness that counts the bytes it exchanges with the runner on the Fn API, for
`worker_pool_main --container_executable` (through a shell wrapper; benchmarks/prism_pool.py).

On Prism every PCollection that leaves a fused stage goes back to the runner over the data
plane and stays in Prism's memory until its consumers have read it, so the bytes an SDK
worker sends are the bytes the runner shuffles and holds. Counted exactly, per data sink
(Prism names a sink `<transform id>_<output tag>`, so it says which transform produced
them), as the encoded element bytes of each `Elements.Data`; also the bytes read back as
stage inputs and as side inputs (state API `get`). Otherwise it is the pool's own harness
(`SdkHarness` with the pool's default settings). The counts go to $FN_BYTES_DIR/<pid>.json,
rewritten every second and at exit.

With HARNESS_TRACEMALLOC=1 the worker also traces Python allocations and, each time its
resident memory passes a new high by 5%, writes the 25 largest allocation sites (by line) to
$FN_BYTES_DIR/<pid>.tracemalloc.txt: slower, for finding what holds a worker's memory.
"""

from __future__ import annotations

import argparse
import atexit
import ctypes
import json
import os
import signal
import sys
import threading
import time
import tracemalloc
from collections import Counter

from apache_beam.runners.worker import bundle_processor, data_plane, sdk_worker

COUNTS: dict[str, Counter] = {"sent": Counter(), "received": Counter(), "state": Counter()}
BUNDLES: list[dict] = []  # when each bundle ran, which steps it held, its bytes in and out
PER_BUNDLE: dict[str, Counter] = {}  # instruction id -> bytes in / out, until it ends
RUNNING: dict[str, list] = {}  # instruction id -> steps, while it runs
LOCK = threading.Lock()


def count(kind: str, key: str, size: int, instruction: str = "") -> None:
    with LOCK:
        COUNTS[kind][key] += size
        if instruction:
            PER_BUNDLE.setdefault(instruction, Counter())[kind] += size


def install_counters() -> None:
    channel = data_plane._GrpcDataChannel
    enqueue, read_inputs = channel._enqueue_to_send, channel._read_inputs

    def counted_enqueue(self, elem):
        if getattr(elem, "data", None):
            count("sent", elem.transform_id, len(elem.data), elem.instruction_id)
        return enqueue(self, elem)

    def counted_read_inputs(self, elements_iterator):
        def counted():
            for elements in elements_iterator:
                for data in elements.data:
                    count("received", data.transform_id, len(data.data), data.instruction_id)
                yield elements

        return read_inputs(self, counted())

    handler = sdk_worker.GrpcStateHandler
    get_raw = handler.get_raw

    def counted_get_raw(self, state_key, *args, **kwargs):
        data, token = get_raw(self, state_key, *args, **kwargs)
        count("state", state_key.WhichOneof("type"), len(data))
        return data, token

    processor = bundle_processor.BundleProcessor
    process_bundle = processor.process_bundle

    def timed_process_bundle(self, instruction_id, *args, **kwargs):
        started = time.time()
        names = sorted(
            {
                "/".join(t.unique_name.split("/")[:2])
                for t in self.process_bundle_descriptor.transforms.values()
            }
        )
        with LOCK:
            RUNNING[instruction_id] = names
        try:
            return process_bundle(self, instruction_id, *args, **kwargs)
        finally:
            with LOCK:
                RUNNING.pop(instruction_id, None)
                io = PER_BUNDLE.pop(instruction_id, Counter())
                BUNDLES.append(
                    {
                        "start": started,
                        "end": time.time(),
                        "steps": names,
                        "in": io["received"],
                        "out": io["sent"],
                    }
                )

    processor.process_bundle = timed_process_bundle
    channel._enqueue_to_send = counted_enqueue
    channel._read_inputs = counted_read_inputs
    handler.get_raw = counted_get_raw


def dump(path: str) -> None:
    with LOCK:
        text = json.dumps({**{kind: dict(c) for kind, c in COUNTS.items()}, "bundles": BUNDLES})
    with open(path + ".tmp", "w") as handle:
        handle.write(text)
    os.replace(path + ".tmp", path)


def resident_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def malloc_state() -> str:
    """glibc's heap: bytes in use, free but kept, and in mmapped blocks; Arrow's pool."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _Mallinfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return ""
    import pyarrow

    mib = 2**20
    return (
        f"malloc in use {info.uordblks / mib:.0f} free {info.fordblks / mib:.0f} "
        f"mmapped {info.hblkhd / mib:.0f} MiB; "
        f"arrow {pyarrow.total_allocated_bytes() / mib:.0f} MiB"
    )


def snapshot_at_new_high(path: str, high: float) -> float:
    rss = resident_mib()
    if rss < high * 1.05 or rss < 200:
        return high
    traced, _ = tracemalloc.get_traced_memory()
    stats = tracemalloc.take_snapshot().statistics("lineno")[:25]
    with LOCK:
        running = [[n for n in steps if "/" in n] for steps in RUNNING.values()]
    lines = [
        f"t={time.time():.1f} rss={rss:.0f} MiB traced={traced / 2**20:.0f} MiB {malloc_state()}"
    ]
    lines += [f"  {s.size / 2**20:8.1f} MiB {s.count:>9} {s.traceback}" for s in stats]
    lines.append(f"  running bundles: {running}")
    with open(path.replace(".json", ".tracemalloc.txt"), "a") as handle:
        handle.write("\n".join(lines) + "\n")
    return rss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--id", required=True)
    parser.add_argument("--control_endpoint", required=True)
    args, _ = parser.parse_known_args()
    path = os.path.join(os.environ["FN_BYTES_DIR"], f"{os.getpid()}.json")
    install_counters()
    atexit.register(dump, path)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # the pool's StopWorker: dump first
    stop = threading.Event()

    tracing = os.environ.get("HARNESS_TRACEMALLOC") == "1"
    if tracing:
        tracemalloc.start(8)
    high = [0]

    def every_second():
        while not stop.wait(1.0):
            dump(path)
            if tracing:
                high[0] = snapshot_at_new_high(path, high[0])

    threading.Thread(target=every_second, daemon=True).start()
    # The pool's own command for a worker process (worker_pool_main, use_process=True).
    sdk_worker.SdkHarness(
        args.control_endpoint, worker_id=args.id, state_cache_size=0, data_buffer_time_limit_ms=-1
    ).run()
    stop.set()


if __name__ == "__main__":
    main()
