"""Train a GRU language model on a pipeline output directory.

    python -m lm.train --data DIR --out RUN [--time-budget SECONDS] [--max-steps N] [--resume]

Loop: batches of `--batch-size` contexts of `--block-size` tokens from `lm.data.TrainStream`,
AdamW, gradient clipping, linear warmup then cosine decay (over `--max-steps`, or over the
time budget when one is given), periodic evaluation on the first `--eval-tokens` validation
targets, atomic checkpoints (model, optimizer, schedule, RNG, data position) every
`--checkpoint-every` steps or `--checkpoint-seconds`. At the end: the whole validation split
(`lm.evaluate`), the n-gram baselines on the same tokens (`lm.ngram`), compute accounting
(`lm.accounting`), `RUN/metrics.json` and PNG plots (`lm.plots`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from lm.accounting import accounting
from lm.data import (
    DataDirError,
    TrainStream,
    data_fingerprint,
    in_worker_order,
    iter_documents,
    load_manifest,
    load_vocab,
    split_chars,
)
from lm.evaluate import evaluate
from lm.model import GRULM, GRUConfig

CHECKPOINT = "checkpoint.pt"
# options that must not change when a run is resumed
FIXED_ON_RESUME = ("seed", "batch_size", "block_size", "emb_dim", "hidden", "layers", "dropout",
                   "head", "lr", "min_lr_ratio", "warmup_steps", "weight_decay", "grad_clip",
                   "workers", "max_steps", "time_budget", "amp")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m lm.train",
        description="Train a GRU language model on the output of beam_jobs.prepare and write "
                    "RUN/metrics.json, RUN/checkpoint.pt and plots.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--data", required=True, help="pipeline output directory (manifest.json)")
    ap.add_argument("--out", required=True, help="run directory")
    ap.add_argument("--resume", action="store_true",
                    help="continue from RUN/checkpoint.pt (model, optimizer, schedule, RNG, "
                         "data position)")
    stop = ap.add_argument_group("when to stop (at least one)")
    stop.add_argument("--max-steps", type=int, default=None)
    stop.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                      help="wall-clock seconds of the training loop (periodic evaluation and "
                           "checkpoints included; start-up and the final evaluation excluded)")
    m = ap.add_argument_group("model")
    m.add_argument("--emb-dim", type=int, default=128)
    m.add_argument("--hidden", type=int, default=512)
    m.add_argument("--layers", type=int, default=1)
    m.add_argument("--dropout", type=float, default=0.0)
    m.add_argument("--head", default="auto", choices=("auto", "full", "adaptive"),
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


def save_atomic(obj, path: str) -> None:
    """torch.save to a temporary file in the same directory, fsync, then rename over `path`."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json_atomic(obj, path: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
    os.replace(tmp, path)


def make_optimizer(model, args):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def train(args) -> dict:
    started = time.time()
    if args.max_steps is None and args.time_budget is None:
        fail("give --max-steps and/or --time-budget")
    try:
        manifest = load_manifest(args.data)
    except DataDirError as e:
        fail(str(e))
    vocab = load_vocab(args.data, manifest)
    torch.set_num_threads(args.threads or auto_threads())
    device = resolve_device(args.device)
    autocast, scaler, amp = autocast_for(device, args.amp)
    os.makedirs(args.out, exist_ok=True)
    ckpt_path = os.path.join(args.out, CHECKPOINT)
    if os.path.exists(ckpt_path) and not args.resume:
        fail(f"{ckpt_path} exists: pass --resume to continue that run, or choose another --out")

    torch.manual_seed(args.seed)
    model_config = GRUConfig(len(vocab), args.emb_dim, args.hidden, args.layers, args.dropout,
                             args.head)
    model = GRULM(model_config).to(device)
    optimizer = make_optimizer(model, args)
    schedule = WarmupCosine(optimizer, args.lr, args.warmup_steps, args.min_lr_ratio,
                            args.max_steps, args.time_budget)
    state = {"step": 0, "tokens": 0, "loop_seconds": 0.0, "train_seconds": 0.0, "history": [],
             "data_position": {}, "next_worker": 0, "loss_sum": 0.0, "loss_tokens": 0, "epoch": 0}
    options = {k: getattr(args, k) for k in FIXED_ON_RESUME}
    if args.resume and os.path.exists(ckpt_path):
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        changed = {k: (ckpt["options"].get(k), v) for k, v in options.items()
                   if ckpt["options"].get(k) != v}
        if changed:
            fail(f"--resume with different options {changed} (checkpoint, now)")
        if ckpt["data_fingerprint"] != data_fingerprint(manifest):
            fail("--resume on a different data directory than the checkpoint's")
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
        save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "schedule": schedule.state_dict(), "scaler": scaler and scaler.state_dict(),
                     "rng": {"torch": torch.get_rng_state(),
                             "cuda": torch.cuda.get_rng_state_all()
                             if device.type == "cuda" else None},
                     "state": state, "options": options, "model_config": asdict(model.config),
                     "vocab": vocab.tokens, "tokenizer": manifest["tokenizer"],
                     "data": os.path.abspath(args.data),
                     "data_fingerprint": data_fingerprint(manifest)}, ckpt_path)

    stream = TrainStream(args.data, manifest, vocab, args.batch_size, args.block_size,
                         seed=args.seed, start=state["data_position"])
    loader = DataLoader(stream, batch_size=None, num_workers=args.workers,
                        pin_memory=device.type == "cuda",
                        prefetch_factor=4 if args.workers else None,
                        # its own generator: creating the iterator must not draw from the global
                        # RNG, whose state (dropout) is part of the checkpoint
                        generator=torch.Generator().manual_seed(args.seed))

    def run_eval(max_tokens=None, chars=None):
        return evaluate(model, iter_documents(args.data, manifest, vocab, "val"), device,
                        lanes=args.eval_lanes, block_size=args.block_size,
                        max_tokens=max_tokens, autocast=autocast() if amp != "off" else None,
                        chars=chars)

    def periodic_eval():
        result = run_eval(args.eval_tokens or None)
        train_loss = state["loss_sum"] / max(state["loss_tokens"], 1)
        state["history"].append({
            "step": state["step"], "tokens_seen": state["tokens"], "train_loss": train_loss,
            "val_loss": result["loss"], "val_perplexity": result["perplexity"],
            "val_tokens": result["tokens"], "lr": schedule.last_lr,
            "seconds": state["loop_seconds"]})
        state["loss_sum"], state["loss_tokens"] = 0.0, 0
        return result

    def out_of_time() -> bool:
        return args.time_budget is not None and state["loop_seconds"] >= args.time_budget

    def done() -> bool:
        return (args.max_steps is not None and state["step"] >= args.max_steps) or out_of_time()

    model.train()
    bar = tqdm(total=args.max_steps, initial=state["step"], disable=args.no_progress,
               dynamic_ncols=True, mininterval=2.0, desc="train")
    loop_start, loop_base = time.time(), state["loop_seconds"]
    workers = stream.active_workers(args.workers)
    last_ckpt = time.time()
    batches = in_worker_order(loader, workers, state["next_worker"])
    while not done():
        step_start = time.time()
        batch = next(batches)
        x = batch["x"].to(device, non_blocking=True)
        y = batch["y"].to(device, non_blocking=True)
        schedule.set(state["step"], state["loop_seconds"])
        with autocast():
            features, _ = model(x)
        keep = y.reshape(-1) != -100
        logp = model.target_log_probs(features.reshape(-1, features.shape[-1])[keep],
                                      y.reshape(-1)[keep])
        loss = -logp.mean()
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
        n = int(keep.sum())
        state["step"] += 1
        state["tokens"] += n
        state["loss_sum"] += loss.item() * n
        state["loss_tokens"] += n
        state["data_position"][int(batch["worker"])] = (int(batch["epoch"]),
                                                        int(batch["index"]) + 1)
        state["next_worker"] = (int(batch["worker"]) + 1) % workers
        state["epoch"] = int(batch["epoch"])
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
                      f"{result['tokens']} tokens)")
            state["loop_seconds"] = loop_base + time.time() - loop_start
        if (state["step"] % args.checkpoint_every == 0 or done()
                or time.time() - last_ckpt >= args.checkpoint_seconds):
            checkpoint()
            last_ckpt = time.time()
            state["loop_seconds"] = loop_base + time.time() - loop_start
    bar.close()
    del batches

    final_start = time.time()
    chars = split_chars(args.data, manifest, "val")
    final = run_eval(None, chars)
    print(f"final: val perplexity {final['perplexity']:.3f}, {final['bits_per_char']:.4f} "
          f"bits/char over {final['tokens']} tokens ({time.time() - final_start:.1f}s)",
          file=sys.stderr)
    baselines = {}
    if args.baselines == "on":
        baselines = cached_baselines(args, manifest, vocab)
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
        "data": {"dir": os.path.abspath(args.data), "fingerprint": data_fingerprint(manifest),
                 "vocab_size": len(vocab), "tokenizer": manifest["tokenizer"]},
        "final_eval_seconds": time.time() - final_start,
        "total_wall_seconds": time.time() - started,
    }
    write_json_atomic(metrics, os.path.join(args.out, "metrics.json"))
    if args.plots == "on":
        make_plots(args, manifest, vocab, metrics)
    return metrics


def cached_baselines(args, manifest, vocab) -> dict:
    """N-gram baseline results, cached in RUN/baselines.json for this data and k."""
    from lm.ngram import evaluate_baselines

    path = os.path.join(args.out, "baselines.json")
    key = {"fingerprint": data_fingerprint(manifest), "add_k": args.add_k}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            cached = json.load(f)
        if cached.get("key") == key:
            return cached["results"]
    start = time.time()
    results = evaluate_baselines(args.data, manifest, vocab, args.add_k)
    print(f"baselines ({time.time() - start:.1f}s): " + ", ".join(
        f"{k} {v['perplexity']:.3f}" for k, v in results.items()), file=sys.stderr)
    write_json_atomic({"key": key, "results": results}, path)
    return results


def make_plots(args, manifest, vocab, metrics) -> None:
    from lm.ngram import CountTables
    from lm.plots import plot_bigram_heatmap, plot_losses, plot_perplexity

    plot_losses(metrics["history"], os.path.join(args.out, "loss.png"))
    plot_perplexity(metrics["history"], metrics["val_perplexity"], metrics["baselines"],
                    os.path.join(args.out, "perplexity.png"))
    if manifest["ngrams"]["order"] >= 2:
        tables = CountTables.from_parquet(args.data, manifest, vocab, max_order=2)
        plot_bigram_heatmap(tables, vocab, os.path.join(args.out, "bigram_heatmap.png"))


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    metrics = train(args)
    table = {"gru": metrics["val_perplexity"], **metrics["baselines"]}
    print(f"{'model':<16} {'val perplexity':>15}")
    for name, ppl in table.items():
        print(f"{name:<16} {ppl:>15.3f}")
    print(f"metrics: {os.path.join(args.out, 'metrics.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
