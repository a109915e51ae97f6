"""Where and in what precision a run computes: device, CPU threads, mixed precision."""

from __future__ import annotations

import os
from contextlib import nullcontext

import torch


def auto_threads() -> int:
    """The cores not busy with other work (1-minute load average), at least 1: oversubscribed
    cores slow torch down badly."""
    cores = os.cpu_count() or 1
    busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cores, round(cores - busy)))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_for(device: torch.device, amp: str):
    """(autocast context factory, GradScaler or None, resolved amp name)."""
    if amp == "auto":
        amp = (
            "off"
            if device.type != "cuda"
            else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
        )
    if amp == "off":
        return nullcontext, None, amp
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda") if amp == "fp16" and device.type == "cuda" else None
    return (lambda: torch.autocast(device.type, dtype=dtype)), scaler, amp
