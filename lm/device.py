"""Where and in what precision a run computes: device and autocast (the choices of threads and
of `--amp auto` are measured in `lm.hardware`)."""

from __future__ import annotations

from contextlib import nullcontext

import torch


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
