"""The run's hardware defaults, each chosen by a measurement and recorded with its reason.

* threads: the cores of this process's affinity that are idle *now*, from two reads of
  `/proc/stat` a fraction of a second apart. The 1-minute load average still counts a pipeline
  run that ended seconds ago (it decays over minutes), so it would leave cores unused.
* mixed precision (`--amp auto`): on CPU, a short probe of the run's own model shape times
  interleaved forward+backward steps in float32 and under bf16 autocast, in CPU time of the
  process (other work on a shared machine inflates wall time, not that), and takes bf16 only
  where its median step is clearly cheaper: CPUs with AMX or AVX512-BF16 run it faster, others
  slower, and only the probe knows this build of torch and this shape. On CUDA: bf16 where
  the GPU supports it, else fp16 with a gradient scaler.
* CUDA: TF32 matmuls and convolutions, cuDNN autotuning (`cuda_settings`).
"""

from __future__ import annotations

import copy
import os
import statistics
import time

import torch

PROBE_STEPS = 3  # timed steps per precision (after one warm-up each)
BF16_MARGIN = 0.9  # bf16 must take under 90% of the float32 step time
CPU_FLAGS = ("amx_bf16", "avx512_bf16", "avx512f", "avx2")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies over all CPUs, or None without /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already inside user time
    return total - idle, total


def busy_cores(interval: float = 0.5) -> tuple[float, str]:
    """(cores busy with other work now, how it was measured)."""
    first = _cpu_times()
    if first is not None:
        time.sleep(interval)
        second = _cpu_times()
        total = second[1] - first[1]
        if total > 0:
            share = (second[0] - first[0]) / total
            return share * (os.cpu_count() or 1), f"/proc/stat over {interval:g} s"
    if hasattr(os, "getloadavg"):
        return os.getloadavg()[0], "1-minute load average"
    return 0.0, "no load measure"


def choose_threads(requested: int) -> tuple[int, str]:
    """(torch CPU threads, why): `requested` if given, else the idle usable cores, at least 1."""
    if requested:
        return requested, "--threads"
    cores = usable_cores()
    busy, how = busy_cores()
    n = max(1, min(cores, round(cores - busy)))
    return n, f"{cores} usable cores, {busy:.1f} busy ({how}): {n} idle"


def cpu_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [flag for flag in CPU_FLAGS if flag in have]
    except OSError:
        pass
    return []


def _step_seconds(model, x, y, bf16: bool) -> float:
    """CPU seconds of this process for one step: what the step costs, where wall time would
    also count the time other processes on a shared machine held the cores."""
    start = time.process_time()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss, _ = model.loss(x, y)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return time.process_time() - start


def probe_cpu_bf16(model, batch_size: int, block_size: int, steps: int = PROBE_STEPS) -> dict:
    """Median CPU seconds of a forward+backward step of a copy of `model` in float32 and in bf16
    autocast, measured alternately so that a change of load hits both; the global RNG is left
    as it was (the run's dropout and data order do not depend on the probe)."""
    probe = copy.deepcopy(model).train()
    vocab = probe.config.vocab_size
    with torch.random.fork_rng(devices=[]):
        g = torch.Generator().manual_seed(0)
        x = torch.randint(0, vocab, (batch_size, block_size), generator=g)
        y = torch.randint(0, vocab, (batch_size, block_size), generator=g)
        times = {False: [], True: []}
        for bf16 in (False, True):
            _step_seconds(probe, x, y, bf16)  # warm-up: allocations, kernel selection
        for _ in range(steps):
            for bf16 in (False, True):
                times[bf16].append(_step_seconds(probe, x, y, bf16))
    fp32, bf16 = statistics.median(times[False]), statistics.median(times[True])
    return {
        "fp32_step_seconds": fp32,
        "bf16_step_seconds": bf16,
        "steps": steps,
        "shape": [batch_size, block_size],
        "cpu_flags": cpu_flags(),
        "torch": torch.__version__,
    }


def choose_amp(device: torch.device, amp: str, model, batch_size: int, block_size: int):
    """(amp name, why, probe figures or None) for `--amp`; only `auto` is decided here."""
    if amp != "auto":
        return amp, "--amp", None
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bf16", "CUDA device supports bf16", None
        return "fp16", "CUDA device without bf16: fp16 with a gradient scaler", None
    if device.type != "cpu":
        return "off", f"no autocast choice for {device.type}", None
    p = probe_cpu_bf16(model, batch_size, block_size)
    ratio = p["bf16_step_seconds"] / max(p["fp32_step_seconds"], 1e-12)
    p["bf16_time_ratio"] = ratio
    flags = ", ".join(p["cpu_flags"]) or "none of " + ", ".join(CPU_FLAGS)
    figures = (
        f"probe: bf16 step {p['bf16_step_seconds']:.3f} CPU s vs float32 "
        f"{p['fp32_step_seconds']:.3f} (median of {p['steps']}, ratio {ratio:.2f}; "
        f"CPU flags {flags})"
    )
    if ratio < BF16_MARGIN:
        return "bf16", figures, p
    return "off", figures + f": bf16 not under {BF16_MARGIN:.0%} of float32", p


def cuda_settings(device: torch.device) -> dict:
    """The fast settings for a CUDA run (TF32, cuDNN autotuning); what was set."""
    if device.type != "cuda":
        return {}
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True  # fixed shapes: autotuned GRU kernels pay off
    torch.set_float32_matmul_precision("high")
    return {
        "allow_tf32": True,
        "cudnn_benchmark": True,
        "float32_matmul_precision": "high",
        "name": torch.cuda.get_device_name(device),
    }
