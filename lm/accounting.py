"""Compute accounting: parameters, tokens, training FLOPs by the 6·N·D rule, and cost.

6·N·D (forward 2·N·D + backward 4·N·D, Kaplan et al. 2020) counts every parameter once per
token. For this model it is an upper bound: an embedding lookup costs no multiply-adds and an
adaptive softmax only evaluates the tail clusters a target falls in; `flops_dense_estimate` is
the same rule without the embedding table.
"""

from __future__ import annotations

from torch import nn


def parameter_counts(model: nn.Module) -> dict:
    total = sum(p.numel() for p in model.parameters())
    embedding = sum(
        p.numel() for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters()
    )
    return {
        "parameters": total,
        "embedding_parameters": embedding,
        "non_embedding_parameters": total - embedding,
    }


def training_flops(parameters: int, tokens: int) -> float:
    """6·N·D."""
    return 6.0 * parameters * tokens


def cost_estimate(
    seconds: float,
    tokens: int,
    price_per_hour: float | None = None,
    price_per_million_tokens: float | None = None,
) -> dict:
    """Cost of a run at a price per machine-hour and/or per million training tokens."""
    out: dict = {"hours": seconds / 3600.0}
    if price_per_hour is not None:
        out["price_per_hour"] = price_per_hour
        out["cost_at_price_per_hour"] = seconds / 3600.0 * price_per_hour
    if price_per_million_tokens is not None:
        out["price_per_million_tokens"] = price_per_million_tokens
        out["cost_at_price_per_million_tokens"] = tokens / 1e6 * price_per_million_tokens
    return out


def accounting(
    model: nn.Module,
    tokens: int,
    train_seconds: float,
    wall_seconds: float,
    price_per_hour: float | None = None,
    price_per_million_tokens: float | None = None,
) -> dict:
    counts = parameter_counts(model)
    return {
        **counts,
        "tokens_seen": tokens,
        "flops": training_flops(counts["parameters"], tokens),
        "flops_dense_estimate": training_flops(counts["non_embedding_parameters"], tokens),
        "flops_rule": "6*N*D, N = all parameters, D = training target tokens",
        "train_seconds": train_seconds,
        "wall_seconds": wall_seconds,
        "tokens_per_second": tokens / train_seconds if train_seconds > 0 else 0.0,
        "cost": cost_estimate(wall_seconds, tokens, price_per_hour, price_per_million_tokens),
    }
