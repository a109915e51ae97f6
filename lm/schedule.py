"""The optimizer and its learning-rate schedule."""

from __future__ import annotations

import math

import torch


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float):
    """AdamW; weight decay on matrices (embedding, GRU and head weights), none on biases."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=lr,
    )


class WarmupCosine:
    """Linear warmup to `lr`, then cosine to `lr * min_ratio` over the run's progress: the
    fraction of `max_steps` done, or of the time budget spent, whichever is further."""

    def __init__(self, optimizer, lr, warmup_steps, min_ratio, max_steps=None, time_budget=None):
        self.optimizer, self.lr, self.warmup = optimizer, lr, warmup_steps
        self.min_ratio, self.max_steps, self.time_budget = min_ratio, max_steps, time_budget
        self.last_lr = 0.0

    def progress(self, step: int, seconds: float) -> float:
        parts = []
        if self.max_steps:
            parts.append((step - self.warmup) / max(self.max_steps - self.warmup, 1))
        if self.time_budget:
            parts.append(seconds / self.time_budget)
        return min(max(parts + [0.0]), 1.0)

    def set(self, step: int, seconds: float) -> float:
        """Learning rate for optimizer step number `step` (0-based)."""
        if step < self.warmup:
            lr = self.lr * (step + 1) / self.warmup
        else:
            cos = 0.5 * (1 + math.cos(math.pi * self.progress(step, seconds)))
            lr = self.lr * (self.min_ratio + (1 - self.min_ratio) * cos)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.last_lr = lr
        return lr

    def state_dict(self) -> dict:
        return {"last_lr": self.last_lr}

    def load_state_dict(self, state: dict) -> None:
        self.last_lr = state["last_lr"]
