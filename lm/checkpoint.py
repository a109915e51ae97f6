"""Checkpoints of `lm.train`: their layout, saving, loading, and a model for inference.

A checkpoint is a plain dict, written atomically (`lm.files.save_torch`). Layout version 2:

    format_version   2
    model, model_config, vocab, tokenizer   what inference needs (`load_model`); a subword
                     tokenizer's model file travels as `tokenizer_model` (bytes)
    optimizer, schedule, scaler, rng        the training state beside the weights
    options          the flags a --resume must repeat (`lm.train_options.FIXED_ON_RESUME`)
    data             [{name, dir, weight}] per domain; a plain --data DIR is the domain "data"
    data_fingerprint the domains' contents and weights (`lm.domains.run_fingerprint`)
    init_from        the checkpoint a continued-pretraining run started from, or None
    state            step, tokens, loop_seconds, train_seconds, loss_sum, loss_tokens, history
                     (as in metrics.json) and domains: {name: {data_position, next_worker,
                     epoch, steps, tokens, loss_sum, loss_tokens}}, each stream's position

Version 1 (no `format_version` key) kept a plain --data DIR's stream position in `state`
itself, `data` as the directory and the directory's own data fingerprint; `load_checkpoint`
returns it upgraded, so old runs resume and old checkpoints generate.
"""

from __future__ import annotations

import os

import torch

from lm.data import Vocab, tokenizer_of
from lm.domains import SINGLE, fingerprint_of
from lm.errors import CheckpointError
from lm.files import save_torch
from lm.metrics import upgrade_history
from lm.model import GRULM, GRUConfig

CHECKPOINT = "checkpoint.pt"
FORMAT_VERSION = 2
REQUIRED_KEYS = ("model", "model_config", "vocab", "tokenizer")
STREAM_KEYS = ("data_position", "next_worker", "epoch")


def save_checkpoint(path: str, ckpt: dict) -> None:
    save_torch(path, {"format_version": FORMAT_VERSION, **ckpt})


def load_checkpoint(path: str, map_location="cpu") -> dict:
    """`torch.load` an lm.train checkpoint in the current layout; anything unusable raises
    `CheckpointError` with a one-line message (never a traceback from deep inside torch)."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # truncated zip, bad pickle, EOF, ...: torch raises many kinds
        detail = (str(e).strip().splitlines() or [""])[0][:160]
        raise CheckpointError(
            f"{path}: unreadable checkpoint, truncated or corrupted ({type(e).__name__}: {detail})"
        ) from None
    missing = [k for k in REQUIRED_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: not an lm.train checkpoint (no {', '.join(missing)})")
    version = ckpt.get("format_version", 1)
    if version == 1:
        return upgrade_v1(ckpt)
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format_version {version!r}; this version "
            f"of lm reads versions 1 and {FORMAT_VERSION}"
        )
    return ckpt


def upgrade_v1(ckpt: dict) -> dict:
    """A layout-1 checkpoint in layout 2. Mixture runs already kept per-domain streams; a
    plain --data DIR becomes the one domain "data" of weight 1, whose counters are the run's."""
    ckpt = {**ckpt, "format_version": FORMAT_VERSION}
    state = ckpt.get("state")
    if state is None:  # weights only (not resumable): enough for inference and --init-from
        return ckpt
    state = dict(state)
    stream = {k: state.pop(k) for k in STREAM_KEYS if k in state}
    if isinstance(ckpt.get("data"), str):
        ckpt["data"] = [{"name": SINGLE, "dir": ckpt["data"], "weight": 1.0}]
        state["domains"] = {
            SINGLE: {
                **stream,
                "steps": state["step"],
                "tokens": state["tokens"],
                "loss_sum": state["loss_sum"],
                "loss_tokens": state["loss_tokens"],
            }
        }
        state["history"] = upgrade_history(state["history"], SINGLE)
        ckpt["data_fingerprint"] = fingerprint_of([(SINGLE, ckpt["data_fingerprint"], 1.0)])
    ckpt["state"] = state
    return ckpt


def load_model(path: str, device: str = "cpu") -> tuple[GRULM, Vocab]:
    """(GRULM in eval mode, Vocab) of an lm.train checkpoint; `CheckpointError` (one line)
    when the file is missing, truncated, corrupted or not an lm.train checkpoint."""
    ckpt = load_checkpoint(path, device)
    try:
        model = GRULM(GRUConfig(**ckpt["model_config"])).to(device)
        model.load_state_dict(ckpt["model"])
    except (TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(
            f"{path}: the weights do not fit the model_config ({str(e).splitlines()[0][:160]})"
        ) from None
    model.eval()
    tokenizer = tokenizer_of(ckpt["tokenizer"], model_bytes=ckpt.get("tokenizer_model"))
    return model, Vocab(ckpt["vocab"], tokenizer)
