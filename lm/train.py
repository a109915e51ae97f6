"""Train a GRU language model on a pipeline output directory.

    python -m lm.train --data DIR --out RUN [--time-budget SECONDS] [--max-steps N] [--resume]
    python -m lm.train --data general=DIR1:0.6 --data domain=DIR2:0.4 --out RUN \
        [--init-from PRETRAINED/checkpoint.pt] ...        # a mixture (continued pretraining)

Loop: batches of `--batch-size` contexts of `--block-size` tokens from `lm.data.TrainStream`,
AdamW, gradient clipping, linear warmup then cosine decay (over `--max-steps`, or over the
time budget when one is given), periodic evaluation on the first `--eval-tokens` validation
targets, atomic checkpoints (model, optimizer, schedule, RNG, data position) every
`--checkpoint-every` steps or `--checkpoint-seconds`. At the end: the whole validation split
(`lm.evaluate`), the n-gram baselines on the same tokens (`lm.ngram`), compute accounting
(`lm.accounting`), `RUN/metrics.json` and PNG plots (`lm.plots`).

Mixtures (`lm.mixture`): several `--data NAME=DIR:WEIGHT` domains (or `--mix-temperature T`
for weights from their train sizes). Each step draws its whole batch from one domain, chosen by
`MixtureSampler` (seeded, a function of the step number). Every evaluation scores each domain on
its own validation split and the weighted objective sum_i w_i * loss_i. The model vocabulary
is the union of the domains' vocabularies, or with `--init-from` the checkpoint's, through which
every domain is mapped (characters the checkpoint lacks become `<unk>`; their count is printed
and kept in metrics.json). `--init-from` takes the weights and shape of a trained model and
starts a new run from them (fresh optimizer and schedule).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from beam_jobs.tokens.tokenizers import get_tokenizer
from lm.accounting import accounting
from lm.data import (
    DataDirError,
    TrainStream,
    Vocab,
    data_fingerprint,
    in_worker_order,
    iter_documents,
    load_manifest,
    load_vocab,
    read_vocab_json,
    split_chars,
)
from lm.errors import CheckpointError
from lm.evaluate import evaluate
from lm.files import save_torch, write_json
from lm.mixture import (
    MixtureError,
    MixtureSampler,
    normalize_weights,
    oov_train_tokens,
    parse_domain_spec,
    temperature_weights,
    union_vocab,
)
from lm.model import GRULM, GRUConfig

CHECKPOINT = "checkpoint.pt"
# options that must not change when a run is resumed
FIXED_ON_RESUME = ("seed", "batch_size", "block_size", "emb_dim", "hidden", "layers", "dropout",
                   "head", "lr", "min_lr_ratio", "warmup_steps", "weight_decay", "grad_clip",
                   "workers", "max_steps", "time_budget", "amp", "init_from", "mix_temperature")
MODEL_DEFAULTS = {"emb_dim": 128, "hidden": 512, "layers": 1, "dropout": 0.0, "head": "auto"}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m lm.train",
        description="Train a GRU language model on the output of beam_jobs.prepare and write "
                    "RUN/metrics.json, RUN/checkpoint.pt and plots.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--data", required=True, action="append",
                    help="pipeline output directory (manifest.json); for a mixture, repeat as "
                         "NAME=DIR:WEIGHT (weight 0: evaluated, never trained on), or NAME=DIR "
                         "with --mix-temperature")
    ap.add_argument("--mix-temperature", type=float, default=None, metavar="T",
                    help="mixture weights from the domains' train tokens: p_i ~ size_i^(1/T) "
                         "(1: proportional to size; large: uniform)")
    ap.add_argument("--init-from", default=None, metavar="CHECKPOINT",
                    help="start from this trained checkpoint's weights, shape and vocabulary "
                         "(continued pretraining; new optimizer and schedule). Characters of the "
                         "data missing from its vocabulary map to <unk>")
    ap.add_argument("--out", required=True, help="run directory")
    ap.add_argument("--resume", action="store_true",
                    help="continue from RUN/checkpoint.pt (model, optimizer, schedule, RNG, "
                         "data position)")
    stop = ap.add_argument_group("when to stop (at least one)")
    stop.add_argument("--max-steps", type=int, default=None)
    stop.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                      help="wall-clock seconds of the training loop (periodic evaluation and "
                           "checkpoints included; start-up and the final evaluation excluded)")
    m = ap.add_argument_group("model (defaults: emb-dim 128, hidden 512, layers 1, dropout 0, "
                              "head auto; with --init-from, the checkpoint's)")
    m.add_argument("--emb-dim", type=int, default=None)
    m.add_argument("--hidden", type=int, default=None)
    m.add_argument("--layers", type=int, default=None)
    m.add_argument("--dropout", type=float, default=None)
    m.add_argument("--head", default=None, choices=("auto", "full", "adaptive"),
                   help="output softmax; auto: adaptive above 1024 tokens")
    o = ap.add_argument_group("optimization")
    o.add_argument("--batch-size", type=int, default=32)
    o.add_argument("--block-size", type=int, default=128)
    o.add_argument("--lr", type=float, default=3e-3)
    o.add_argument("--min-lr-ratio", type=float, default=0.1, help="final lr / peak lr")
    o.add_argument("--warmup-steps", type=int, default=100)
    o.add_argument("--weight-decay", type=float, default=0.01)
    o.add_argument("--grad-clip", type=float, default=1.0)
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--amp", default="auto", choices=("auto", "off", "bf16", "fp16"),
                   help="mixed precision; auto: bf16 (or fp16) on CUDA, off on CPU")
    s = ap.add_argument_group("system")
    s.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    s.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads; 0: the cores not busy with other work (1-minute "
                        "load average), at least 1. Oversubscribed cores slow torch down badly")
    s.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    e = ap.add_argument_group("evaluation, checkpoints, outputs")
    e.add_argument("--eval-every", type=int, default=500, help="steps between evaluations")
    e.add_argument("--eval-tokens", type=int, default=262144,
                   help="validation targets used by periodic evaluations (0: all); the final "
                        "evaluation always uses the whole split")
    e.add_argument("--eval-lanes", type=int, default=64)
    e.add_argument("--checkpoint-every", type=int, default=500)
    e.add_argument("--checkpoint-seconds", type=float, default=300.0)
    e.add_argument("--baselines", default="on", choices=("on", "off"),
                   help="evaluate the n-gram baselines on the same validation tokens")
    e.add_argument("--add-k", type=float, default=1.0, help="k of the add-k baselines")
    e.add_argument("--price-per-hour", type=float, default=None,
                   help="machine price per hour for the cost estimate")
    e.add_argument("--price-per-million-tokens", type=float, default=None)
    e.add_argument("--plots", default="on", choices=("on", "off"))
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--simulate-crash-at", type=int, default=None, help=argparse.SUPPRESS)
    return ap


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


def auto_threads() -> int:
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
        amp = "off" if device.type != "cuda" else (
            "bf16" if torch.cuda.is_bf16_supported() else "fp16")
    if amp == "off":
        return nullcontext, None, amp
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda") if amp == "fp16" and device.type == "cuda" else None
    return (lambda: torch.autocast(device.type, dtype=dtype)), scaler, amp


def make_optimizer(model, args):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


CHECKPOINT_KEYS = ("model", "model_config", "vocab", "tokenizer")


def load_checkpoint(path: str, map_location="cpu") -> dict:
    """`torch.load` an lm.train checkpoint; anything unusable raises `CheckpointError` with a
    one-line message (never a traceback from deep inside torch or pickle)."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # truncated zip, bad pickle, EOF, ...: torch raises many kinds
        detail = (str(e).strip().splitlines() or [""])[0][:160]
        raise CheckpointError(f"{path}: unreadable checkpoint, truncated or corrupted "
                              f"({type(e).__name__}: {detail})") from None
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: not an lm.train checkpoint (no {', '.join(missing)})")
    return ckpt


@dataclass
class Domain:
    name: str
    dir: str
    weight: float  # normalized; 0: evaluated, never trained on
    manifest: dict


def _manifest(data_dir: str) -> dict:
    try:
        return load_manifest(data_dir)
    except DataDirError as e:
        fail(str(e))


def resolve_domains(args) -> tuple[list[Domain], bool]:
    """The data directories with normalized weights, and whether this is a mixture run (False
    for a single plain `--data DIR`, which trains exactly as before mixtures existed)."""
    if len(args.data) == 1 and "=" not in args.data[0]:
        if args.mix_temperature is not None:
            fail("--mix-temperature needs several --data NAME=DIR")
        return [Domain("data", args.data[0], 1.0, _manifest(args.data[0]))], False
    try:
        specs = [parse_domain_spec(spec) for spec in args.data]
    except MixtureError as e:
        fail(str(e))
    names = [name for name, _, _ in specs]
    if len(set(names)) != len(names):
        fail(f"--data: domain names must differ, got {names}")
    manifests = {name: _manifest(path) for name, path, _ in specs}
    try:
        if args.mix_temperature is not None:
            if any(w is not None for _, _, w in specs):
                fail("give the weights either in --data NAME=DIR:WEIGHT or by --mix-temperature")
            weights = temperature_weights(
                {n: manifests[n]["splits"]["train"].get("tokens", 0) for n in names},
                args.mix_temperature)
        else:
            if any(w is None for _, _, w in specs):
                fail("--data NAME=DIR needs a weight (NAME=DIR:WEIGHT) or --mix-temperature")
            weights = normalize_weights({n: w for n, _, w in specs})
    except MixtureError as e:
        fail(str(e))
    return [Domain(n, path, weights[n], manifests[n]) for n, path, _ in specs], True


def build_vocab(domains: list[Domain], mixture: bool, init: dict | None) -> Vocab:
    """The model vocabulary: the checkpoint's (--init-from), the data's (one directory), or the
    union of the domains' vocabularies (a fresh mixture)."""
    tokenizers = {json.dumps(d.manifest["tokenizer"], sort_keys=True) for d in domains}
    if init is not None:
        want = json.dumps(init["tokenizer"], sort_keys=True)
        for d in domains:
            if json.dumps(d.manifest["tokenizer"], sort_keys=True) != want:
                fail(f"--init-from: the checkpoint's tokenizer {init['tokenizer']} differs from "
                     f"{d.dir}'s {d.manifest['tokenizer']}; its ids would mean other tokens")
        return Vocab(init["vocab"], get_tokenizer(init["tokenizer"]))
    if not mixture:
        return load_vocab(domains[0].dir, domains[0].manifest)
    if len(tokenizers) > 1:
        fail(f"the domains use different tokenizers: {sorted(tokenizers)}")
    tokens, _ = union_vocab([read_vocab_json(d.dir, d.manifest) for d in domains])
    return Vocab(tokens, get_tokenizer(domains[0].manifest["tokenizer"]))


def resolve_model_options(args, init: dict | None) -> None:
    """Fill the model flags left unset: defaults, or the --init-from checkpoint's shape (a shape
    flag that contradicts the checkpoint is refused)."""
    if init is None:
        for k, v in MODEL_DEFAULTS.items():
            if getattr(args, k) is None:
                setattr(args, k, v)
        return
    cfg = init["model_config"]
    for k in ("emb_dim", "hidden", "layers"):
        given = getattr(args, k)
        if given is not None and given != cfg[k]:
            fail(f"--{k.replace('_', '-')} {given} differs from the --init-from checkpoint's "
                 f"{cfg[k]}; the model shape comes from the checkpoint")
        setattr(args, k, cfg[k])
    if args.head not in (None, "auto", cfg["head"]):
        fail(f"--head {args.head} differs from the --init-from checkpoint's {cfg['head']}")
    args.head = cfg["head"]
    if args.dropout is None:
        args.dropout = cfg["dropout"]


def train(args) -> dict:
    started = time.time()
    if args.max_steps is None and args.time_budget is None:
        fail("give --max-steps and/or --time-budget")
    domains, mixture = resolve_domains(args)
    if not mixture:
        args.data = domains[0].dir  # recorded as before mixtures existed
    init = None
    if args.init_from:
        try:
            init = load_checkpoint(args.init_from)
        except CheckpointError as e:
            fail(str(e))
    resolve_model_options(args, init)
    vocab = build_vocab(domains, mixture, init)
    oov = {}
    if mixture or init is not None:
        for d in domains:
            distinct, tokens, total = oov_train_tokens(read_vocab_json(d.dir, d.manifest),
                                                       vocab.tokens)
            oov[d.name] = {"distinct": distinct, "train_tokens": tokens,
                           "train_tokens_total": total, "rate": tokens / max(total, 1)}
            print(f"{d.name}: weight {d.weight:.4f}, {total:,} train tokens, {distinct} distinct "
                  f"tokens ({tokens:,} train tokens, {oov[d.name]['rate']:.4%}) map to <unk>",
                  file=sys.stderr)
    torch.set_num_threads(args.threads or auto_threads())
    device = resolve_device(args.device)
    autocast, scaler, amp = autocast_for(device, args.amp)
    os.makedirs(args.out, exist_ok=True)
    ckpt_path = os.path.join(args.out, CHECKPOINT)
    if os.path.exists(ckpt_path) and not args.resume:
        fail(f"{ckpt_path} exists: pass --resume to continue that run, or choose another --out")

    torch.manual_seed(args.seed)
    if init is not None:
        model_config = GRUConfig(**{**init["model_config"], "dropout": args.dropout})
    else:
        model_config = GRUConfig(len(vocab), args.emb_dim, args.hidden, args.layers,
                                 args.dropout, args.head)
    model = GRULM(model_config).to(device)
    if init is not None:
        try:
            model.load_state_dict(init["model"])
        except RuntimeError as e:
            fail(f"{args.init_from}: weights do not fit its own model_config "
                 f"({str(e).splitlines()[0]})")
        del init["model"]
    optimizer = make_optimizer(model, args)
    schedule = WarmupCosine(optimizer, args.lr, args.warmup_steps, args.min_lr_ratio,
                            args.max_steps, args.time_budget)
    state = {"step": 0, "tokens": 0, "loop_seconds": 0.0, "train_seconds": 0.0, "history": [],
             "data_position": {}, "next_worker": 0, "loss_sum": 0.0, "loss_tokens": 0, "epoch": 0}
    if mixture:
        state["domains"] = {d.name: {"data_position": {}, "next_worker": 0, "steps": 0,
                                     "tokens": 0, "loss_sum": 0.0, "loss_tokens": 0, "epoch": 0}
                            for d in domains}
        fingerprint = "mix:" + json.dumps(
            [[d.name, data_fingerprint(d.manifest), round(d.weight, 12)] for d in domains])
    else:
        fingerprint = data_fingerprint(domains[0].manifest)
    options = {k: getattr(args, k) for k in FIXED_ON_RESUME}
    if args.resume and os.path.exists(ckpt_path):
        try:
            ckpt = load_checkpoint(ckpt_path, device)
        except CheckpointError as e:
            fail(f"--resume: {e}")
        changed = {k: (ckpt["options"].get(k), v) for k, v in options.items()
                   if ckpt["options"].get(k) != v}
        if changed:
            fail(f"--resume with different options {changed} (checkpoint, now)")
        if ckpt["data_fingerprint"] != fingerprint:
            fail("--resume on different data (directories or mixture weights) than the "
                 "checkpoint's")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        schedule.load_state_dict(ckpt["schedule"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        if device.type == "cuda" and ckpt["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        state = ckpt["state"]
        print(f"resumed from {ckpt_path} at step {state['step']}", file=sys.stderr)
    elif args.resume:
        print(f"--resume: no {ckpt_path} yet, starting a new run", file=sys.stderr)

    def checkpoint():
        save_torch(ckpt_path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "schedule": schedule.state_dict(), "scaler": scaler and scaler.state_dict(),
                     "rng": {"torch": torch.get_rng_state(),
                             "cuda": torch.cuda.get_rng_state_all()
                             if device.type == "cuda" else None},
                     "state": state, "options": options, "model_config": asdict(model.config),
                     "vocab": vocab.tokens, "tokenizer": domains[0].manifest["tokenizer"],
                     "data": [{"name": d.name, "dir": os.path.abspath(d.dir),
                               "weight": d.weight} for d in domains]
                     if mixture else os.path.abspath(domains[0].dir),
                     "init_from": args.init_from, "data_fingerprint": fingerprint})

    # where each training stream stands: the run state itself for one directory
    positions = state["domains"] if mixture else {"data": state}
    sampler = MixtureSampler({d.name: d.weight for d in domains}, seed=args.seed)
    batches, workers_of = {}, {}

    def next_batch(name: str):
        if name not in batches:
            d = next(x for x in domains if x.name == name)
            pos = positions[name]
            stream = TrainStream(d.dir, d.manifest, vocab, args.batch_size, args.block_size,
                                 seed=args.seed, start=pos["data_position"])
            loader = DataLoader(stream, batch_size=None, num_workers=args.workers,
                                pin_memory=device.type == "cuda",
                                prefetch_factor=4 if args.workers else None,
                                # its own generator: creating the iterator must not draw from
                                # the global RNG, whose state (dropout) is in the checkpoint
                                generator=torch.Generator().manual_seed(args.seed))
            workers_of[name] = stream.active_workers(args.workers)
            batches[name] = in_worker_order(loader, workers_of[name], pos["next_worker"])
        return next(batches[name])

    def run_eval(d: Domain, max_tokens=None, chars=None):
        return evaluate(model, iter_documents(d.dir, d.manifest, vocab, "val"), device,
                        lanes=args.eval_lanes, block_size=args.block_size,
                        max_tokens=max_tokens, autocast=autocast() if amp != "off" else None,
                        chars=chars)

    def periodic_eval():
        train_loss = state["loss_sum"] / max(state["loss_tokens"], 1)
        if not mixture:
            result = run_eval(domains[0], args.eval_tokens or None)
            per = None
        else:
            per = {}
            for d in domains:
                r = run_eval(d, args.eval_tokens or None)
                p = state["domains"][d.name]
                per[d.name] = {"weight": d.weight, "val_loss": r["loss"],
                               "val_perplexity": r["perplexity"], "val_tokens": r["tokens"],
                               "train_loss": p["loss_sum"] / p["loss_tokens"]
                               if p["loss_tokens"] else None,
                               "steps": p["steps"], "tokens_seen": p["tokens"]}
                p["loss_sum"], p["loss_tokens"] = 0.0, 0
            loss = sum(d.weight * per[d.name]["val_loss"] for d in domains)
            result = {"loss": loss, "perplexity": math.exp(loss),
                      "tokens": sum(v["val_tokens"] for v in per.values())}
        if state["step"] == 0:
            train_loss = None  # the evaluation before any training step
        state["history"].append({
            "step": state["step"], "tokens_seen": state["tokens"], "train_loss": train_loss,
            "val_loss": result["loss"], "val_perplexity": result["perplexity"],
            "val_tokens": result["tokens"], "lr": schedule.last_lr,
            "seconds": state["loop_seconds"], **({"domains": per} if per else {})})
        state["loss_sum"], state["loss_tokens"] = 0.0, 0
        return result

    def describe(entry) -> str:
        if "domains" not in entry:
            return ""
        return " | " + ", ".join(f"{k} ppl {v['val_perplexity']:.2f}"
                                 for k, v in entry["domains"].items())

    def out_of_time() -> bool:
        return args.time_budget is not None and state["loop_seconds"] >= args.time_budget

    def done() -> bool:
        return (args.max_steps is not None and state["step"] >= args.max_steps) or out_of_time()

    if (mixture or init is not None) and state["step"] == 0 and not state["history"]:
        result = periodic_eval()  # where the (pretrained) model starts on every domain
        print(f"step 0: {'weighted ' if mixture else ''}val {result['loss']:.4f} "
              f"(ppl {result['perplexity']:.2f})"
              + describe(state["history"][-1]), file=sys.stderr)

    model.train()
    bar = tqdm(total=args.max_steps, initial=state["step"], disable=args.no_progress,
               dynamic_ncols=True, mininterval=2.0, desc="train")
    loop_start, loop_base = time.time(), state["loop_seconds"]
    last_ckpt = time.time()
    while not done():
        step_start = time.time()
        name = sampler.domain_at(state["step"]) if mixture else "data"
        batch = next_batch(name)
        x = batch["x"].to(device, non_blocking=True)
        y = batch["y"].to(device, non_blocking=True)
        schedule.set(state["step"], state["loop_seconds"])
        with autocast():
            loss, targets = model.loss(x, y)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
            optimizer.step()
        n = int(targets)
        state["step"] += 1
        state["tokens"] += n
        state["loss_sum"] += loss.item() * n
        state["loss_tokens"] += n
        pos = positions[name]
        pos["data_position"][int(batch["worker"])] = (int(batch["epoch"]),
                                                      int(batch["index"]) + 1)
        pos["next_worker"] = (int(batch["worker"]) + 1) % workers_of[name]
        pos["epoch"] = int(batch["epoch"])
        if mixture:
            pos["steps"] += 1
            pos["tokens"] += n
            pos["loss_sum"] += loss.item() * n
            pos["loss_tokens"] += n
        state["train_seconds"] += time.time() - step_start
        state["loop_seconds"] = loop_base + time.time() - loop_start
        if args.simulate_crash_at is not None and state["step"] >= args.simulate_crash_at:
            raise RuntimeError(f"simulated crash after step {state['step']}")
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{schedule.last_lr:.2e}",
                        tok_s=f"{state['tokens'] / max(state['train_seconds'], 1e-9):,.0f}",
                        refresh=False)
        if state["step"] % args.eval_every == 0 or done():
            result = periodic_eval()
            bar.write(f"step {state['step']}: train {state['history'][-1]['train_loss']:.4f} "
                      f"val {result['loss']:.4f} (ppl {result['perplexity']:.2f} on "
                      f"{result['tokens']} tokens)" + describe(state["history"][-1]))
            state["loop_seconds"] = loop_base + time.time() - loop_start
        if (state["step"] % args.checkpoint_every == 0 or done()
                or time.time() - last_ckpt >= args.checkpoint_seconds):
            checkpoint()
            last_ckpt = time.time()
            state["loop_seconds"] = loop_base + time.time() - loop_start
    bar.close()
    batches.clear()

    final_start = time.time()
    finals = {}
    for d in domains:
        chars = split_chars(d.dir, d.manifest, "val")
        finals[d.name] = run_eval(d, None, chars)
        r = finals[d.name]
        print(f"final{'' if not mixture else ' ' + d.name}: val perplexity "
              f"{r['perplexity']:.3f}, {r['bits_per_char']:.4f} bits/char over {r['tokens']} "
              f"tokens ({time.time() - final_start:.1f}s)", file=sys.stderr)
    if mixture:
        loss = sum(d.weight * finals[d.name]["loss"] for d in domains)
        final = {"loss": loss, "perplexity": math.exp(loss),
                 "bits_per_char": sum(d.weight * finals[d.name]["bits_per_char"]
                                      for d in domains),
                 "tokens": sum(r["tokens"] for r in finals.values())}
        chars = sum(r["chars"] for r in finals.values())
        print(f"final weighted objective: perplexity {final['perplexity']:.3f}", file=sys.stderr)
    else:
        final = finals["data"]
    baselines, per_domain_baselines = {}, {}
    if args.baselines == "on":
        for d in domains:
            per_domain_baselines[d.name] = cached_baselines(
                args.out, d.dir, d.manifest, vocab, args.add_k, d.name if mixture else None)
        if mixture:
            baselines = {f"{n}:{k}": v for n, res in per_domain_baselines.items()
                         for k, v in res.items()}
        else:
            baselines = per_domain_baselines["data"]
    compute = accounting(model, state["tokens"], state["train_seconds"], state["loop_seconds"],
                         args.price_per_hour, args.price_per_million_tokens)
    metrics = {
        "val_perplexity": final["perplexity"], "val_bits_per_char": final["bits_per_char"],
        "val_loss": final["loss"], "val_tokens": final["tokens"], "val_chars": chars,
        "baselines": {k: v["perplexity"] for k, v in baselines.items()},
        "baseline_details": baselines,
        "history": state["history"],
        "tokens_per_second": compute["tokens_per_second"], "flops": compute["flops"],
        "compute": compute, "steps": state["step"], "epochs_started": state["epoch"] + 1,
        "scoring": "each validation document is <bos> t1..tk <eos>; t1..tk and <eos> are "
                   "predicted (k+1 tokens), out-of-vocabulary tokens are <unk>; perplexity = "
                   "exp(total NLL / predicted tokens); bits/char = total NLL / ln 2 / "
                   "val characters (sum of n_chars)",
        "config": {k: v for k, v in vars(args).items() if k != "simulate_crash_at"},
        "model": asdict(model.config), "device": str(device), "amp": amp,
        "torch_threads": torch.get_num_threads(),
        "data": {"dir": os.path.abspath(domains[0].dir), "fingerprint": fingerprint,
                 "vocab_size": len(vocab), "tokenizer": domains[0].manifest["tokenizer"]},
        "final_eval_seconds": time.time() - final_start,
        "total_wall_seconds": time.time() - started,
    }
    if mixture:
        metrics["data"]["dir"] = [os.path.abspath(d.dir) for d in domains]
        metrics["objective"] = ("weighted: sum_i w_i * val_loss_i over the domains; "
                                "val_perplexity = exp(that); val_bits_per_char = sum_i w_i * "
                                "bits/char_i; val_tokens/val_chars are sums")
        metrics["epochs_started"] = {d.name: state["domains"][d.name]["epoch"] + 1
                                     for d in domains}
        metrics["domains"] = {d.name: {
            "dir": os.path.abspath(d.dir), "weight": d.weight,
            "fingerprint": data_fingerprint(d.manifest),
            "val_perplexity": finals[d.name]["perplexity"],
            "val_bits_per_char": finals[d.name]["bits_per_char"],
            "val_loss": finals[d.name]["loss"], "val_tokens": finals[d.name]["tokens"],
            "val_chars": finals[d.name]["chars"],
            "train_steps": state["domains"][d.name]["steps"],
            "train_tokens": state["domains"][d.name]["tokens"],
            "unk_mapped": oov.get(d.name),
            "baselines": {k: v["perplexity"]
                          for k, v in per_domain_baselines.get(d.name, {}).items()}}
            for d in domains}
        metrics["mixture"] = {"weights": {d.name: d.weight for d in domains},
                              "temperature": args.mix_temperature,
                              "sampler": "one domain per step, i.i.d. with these weights, "
                                         f"seed {args.seed} (lm.mixture.MixtureSampler)",
                              "periodic_eval_tokens_per_domain": args.eval_tokens or "all"}
    if args.init_from:
        metrics["init_from"] = {"checkpoint": os.path.abspath(args.init_from),
                                "unk_mapped": oov}
    write_json(os.path.join(args.out, "metrics.json"), metrics)
    if args.plots == "on":
        make_plots(args, domains, vocab, metrics)
    return metrics


def cached_baselines(out: str, data_dir: str, manifest: dict, vocab: Vocab, add_k: float,
                     name: str | None = None) -> dict:
    """N-gram baseline results, cached in RUN/baselines.json (RUN/baselines-NAME.json for a
    mixture's domain) for this data, vocabulary and k."""
    from lm.ngram import evaluate_baselines

    path = os.path.join(out, "baselines.json" if name is None else f"baselines-{name}.json")
    key = {"fingerprint": data_fingerprint(manifest), "add_k": add_k}
    if name is not None:
        key["vocab"] = [len(vocab), hash_tokens(vocab.tokens)]
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            cached = json.load(f)
        if cached.get("key") == key:
            return cached["results"]
    start = time.time()
    results = evaluate_baselines(data_dir, manifest, vocab, add_k)
    print(f"baselines{'' if name is None else ' ' + name} ({time.time() - start:.1f}s): "
          + ", ".join(f"{k} {v['perplexity']:.3f}" for k, v in results.items()),
          file=sys.stderr)
    write_json(path, {"key": key, "results": results})
    return results


def hash_tokens(tokens: list[str]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(tokens).encode("utf-8")).hexdigest()[:16]


def make_plots(args, domains, vocab, metrics) -> None:
    from lm.ngram import CountTables
    from lm.plots import plot_bigram_heatmap, plot_domains, plot_losses, plot_perplexity

    plot_losses(metrics["history"], os.path.join(args.out, "loss.png"))
    mixture = "domains" in metrics
    plot_perplexity(metrics["history"], metrics["val_perplexity"],
                    {} if mixture else metrics["baselines"],
                    os.path.join(args.out, "perplexity.png"))
    if mixture:
        plot_domains(metrics["history"], {k: v["val_perplexity"]
                                          for k, v in metrics["domains"].items()},
                     os.path.join(args.out, "domains.png"))
    for d in domains:
        if d.manifest["ngrams"]["order"] >= 2:
            tables = CountTables.from_parquet(d.dir, d.manifest, vocab, max_order=2)
            plot_bigram_heatmap(tables, vocab, os.path.join(
                args.out, "bigram_heatmap.png" if not mixture
                else f"bigram_heatmap_{d.name}.png"))


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    metrics = train(args)
    if "domains" in metrics:
        print(f"{'domain':<16} {'weight':>7} {'val perplexity':>15} {'bits/char':>10}")
        for name, d in metrics["domains"].items():
            print(f"{name:<16} {d['weight']:>7.3f} {d['val_perplexity']:>15.3f} "
                  f"{d['val_bits_per_char']:>10.4f}")
        print(f"{'weighted':<16} {1:>7.3f} {metrics['val_perplexity']:>15.3f} "
              f"{metrics['val_bits_per_char']:>10.4f}")
        table = metrics["baselines"]
    else:
        table = {"gru": metrics["val_perplexity"], **metrics["baselines"]}
    print(f"{'model':<24} {'val perplexity':>15}")
    for name, ppl in table.items():
        print(f"{name:<24} {ppl:>15.3f}")
    print(f"metrics: {os.path.join(args.out, 'metrics.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
