"""What a training run holds (`Run`), how `setup` builds it from the flags, and how `resume`
and `save` move it from and to its checkpoint (`lm.checkpoint` has the layout)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

from lm.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from lm.data import Vocab, model_bytes_of
from lm.device import autocast_for, resolve_device
from lm.domains import Domain, build_vocab, resolve_domains, run_fingerprint, unk_mapping
from lm.errors import CheckpointError, OptionError
from lm.hardware import choose_amp, choose_threads, cuda_settings
from lm.holdout import holdout_rows
from lm.mixture import MixtureSampler
from lm.model import GRULM, GRUConfig
from lm.schedule import WarmupCosine, make_optimizer
from lm.train_options import FIXED_ON_RESUME, check_options, resolve_model_options


@dataclass
class Run:
    """One training run: what `setup` builds, and `state`, which the steps advance and the
    checkpoint keeps (layout in `lm.checkpoint`)."""

    args: argparse.Namespace
    domains: list[Domain]
    vocab: Vocab
    unk_mapped: dict
    device: torch.device
    autocast: Callable
    scaler: torch.amp.GradScaler | None
    amp: str
    model: GRULM
    optimizer: torch.optim.Optimizer
    schedule: WarmupCosine
    sampler: MixtureSampler
    state: dict
    options: dict
    fingerprint: str
    path: str
    started: float
    hardware: dict = field(default_factory=dict)  # what was chosen and why (lm.hardware)
    # per domain {(shard, row group): rows} never trained on (lm.holdout)
    holdout: dict = field(default_factory=dict)
    # with --carry-state: {(domain, worker): the hidden state after its last batch}
    hidden: dict = field(default_factory=dict)

    @property
    def several(self) -> bool:
        """Several domains: lines and plots name each one and the weighted objective."""
        return len(self.domains) > 1


def new_state(domains: list[Domain]) -> dict:
    return {
        "step": 0,
        "tokens": 0,
        "loop_seconds": 0.0,
        "train_seconds": 0.0,
        "history": [],
        "loss_sum": 0.0,
        "loss_tokens": 0,
        "domains": {
            d.name: {
                "data_position": {},
                "next_worker": 0,
                "epoch": 0,
                "steps": 0,
                "tokens": 0,
                "loss_sum": 0.0,
                "loss_tokens": 0,
            }
            for d in domains
        },
    }


def load_init(path: str | None) -> dict | None:
    """The --init-from checkpoint, or None."""
    if not path:
        return None
    return load_checkpoint(path)


def build_model(args, vocab: Vocab, init: dict | None, device) -> GRULM:
    if init is None:
        config = GRUConfig(
            len(vocab), args.emb_dim, args.hidden, args.layers, args.dropout, args.head
        )
        return GRULM(config).to(device)
    model = GRULM(GRUConfig(**{**init["model_config"], "dropout": args.dropout})).to(device)
    try:
        model.load_state_dict(init.pop("model"))
    except RuntimeError as e:
        raise CheckpointError(
            f"{args.init_from}: weights do not fit its own model_config ({str(e).splitlines()[0]})"
        ) from None
    return model


def setup(args) -> Run:
    """Check the flags, read the domains, build vocabulary, model, optimizer and schedule."""
    started = time.time()
    check_options(args)
    domains = resolve_domains(args.data, args.mix_temperature)
    init = load_init(args.init_from)
    resolve_model_options(args, init)
    vocab = build_vocab(domains, init)
    unk_mapped = unk_mapping(domains, vocab)
    if init is not None or len(domains) > 1:  # the vocabulary is not each domain's own
        for d in domains:
            u = unk_mapped[d.name]
            print(
                f"{d.name}: weight {d.weight:.4f}, {u['train_tokens_total']:,} train tokens, "
                f"{u['distinct']} distinct tokens ({u['train_tokens']:,} train tokens, "
                f"{u['rate']:.4%}) map to <unk>",
                file=sys.stderr,
            )
    threads, threads_why = choose_threads(args.threads)
    torch.set_num_threads(threads)
    device = resolve_device(args.device)
    cuda = cuda_settings(device)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, CHECKPOINT)
    if os.path.exists(path) and not args.resume:
        raise OptionError(
            f"{path} exists: pass --resume to continue that run, or choose another --out"
        )
    torch.manual_seed(args.seed)
    model = build_model(args, vocab, init, device)
    amp, amp_why, probe = choose_amp(device, args.amp, model, args.batch_size, args.block_size)
    autocast, scaler, amp = autocast_for(device, amp)
    hardware = {
        "threads": threads,
        "threads_reason": threads_why,
        "amp": amp,
        "amp_reason": amp_why,
        "amp_probe": probe,
        "cuda": cuda,
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    optimizer = make_optimizer(model, args.lr, args.weight_decay)
    schedule = WarmupCosine(
        optimizer, args.lr, args.warmup_steps, args.min_lr_ratio, args.max_steps, args.time_budget
    )
    return Run(
        args,
        domains,
        vocab,
        unk_mapped,
        device,
        autocast,
        scaler,
        amp,
        model,
        optimizer,
        schedule,
        MixtureSampler({d.name: d.weight for d in domains}, seed=args.seed),
        {**new_state(domains), "hardware_amp": amp},
        {k: getattr(args, k) for k in FIXED_ON_RESUME},
        run_fingerprint(domains),
        path,
        started,
        hardware,
        {
            d.name: holdout_rows(d.dir, d.manifest, args.interpolation_holdout_tokens)
            for d in domains
        },
    )


# Options newer than a checkpoint, and the value that gives the behaviour it was made with.
LEGACY_OPTIONS = {"interpolation_holdout_tokens": 0, "carry_state": False}


def adopt_legacy_options(run: Run, saved: dict) -> None:
    """A checkpoint made before an option existed continues as it was made (no held-out slice,
    no carried state), whatever that option's default is now."""
    for k, v in LEGACY_OPTIONS.items():
        if k not in saved:
            saved[k] = v
            setattr(run.args, k, v)
            run.options[k] = v
    if not run.args.interpolation_holdout_tokens:
        run.holdout = {name: {} for name in run.holdout}


def resume(run: Run) -> None:
    """With --resume and a checkpoint in the run directory: continue exactly where it stood."""
    if not run.args.resume:
        return
    if not os.path.exists(run.path):
        print(f"--resume: no {run.path} yet, starting a new run", file=sys.stderr)
        return
    try:
        ckpt = load_checkpoint(run.path, run.device)
    except CheckpointError as e:
        raise CheckpointError(f"--resume: {e}") from None
    adopt_legacy_options(run, ckpt["options"])
    changed = {
        k: (ckpt["options"].get(k), v)
        for k, v in run.options.items()
        if ckpt["options"].get(k) != v
    }
    if changed:
        raise OptionError(f"--resume with different options {changed} (checkpoint, now)")
    if ckpt["data_fingerprint"] != run.fingerprint:
        raise OptionError(
            "--resume on different data (directories or mixture weights) than the checkpoint's"
        )
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.schedule.load_state_dict(ckpt["schedule"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    if run.device.type == "cuda" and ckpt["rng"].get("cuda") is not None:
        torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
    chosen = ckpt["state"].get("hardware_amp")
    if run.args.amp == "auto" and chosen and chosen != run.amp:  # keep the run's first choice
        run.autocast, run.scaler, run.amp = autocast_for(run.device, chosen)
        run.hardware["amp"], run.hardware["amp_reason"] = chosen, "the resumed run's choice"
    if run.scaler is not None and ckpt.get("scaler"):
        run.scaler.load_state_dict(ckpt["scaler"])
    run.state = ckpt["state"]
    run.hidden = {k: v.to(run.device) for k, v in ckpt.get("hidden", {}).items()}
    print(f"resumed from {run.path} at step {run.state['step']}", file=sys.stderr)


def save(run: Run) -> None:
    cuda = run.device.type == "cuda"
    save_checkpoint(
        run.path,
        {
            "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "schedule": run.schedule.state_dict(),
            "scaler": run.scaler and run.scaler.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if cuda else None,
            },
            "state": run.state,
            "hidden": run.hidden,
            "options": run.options,
            "model_config": asdict(run.model.config),
            "vocab": run.vocab.tokens,
            "tokenizer": run.domains[0].manifest["tokenizer"],
            **model_bytes_of(run.vocab.tokenizer),  # a subword model, for lm.generate
            "data": [
                {"name": d.name, "dir": os.path.abspath(d.dir), "weight": d.weight}
                for d in run.domains
            ],
            "init_from": run.args.init_from,
            "data_fingerprint": run.fingerprint,
        },
    )
