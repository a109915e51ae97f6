"""Train a GRU language model on one or more pipeline output directories.

    python -m lm.train --data DIR --out RUN [--time-budget SECONDS] [--max-steps N] [--resume]
    python -m lm.train --data general=DIR1:0.6 --data domain=DIR2:0.4 --out RUN \
        [--init-from PRETRAINED/checkpoint.pt] ...        # a mixture (continued pretraining)

`train` reads top-down: `setup` (flags, domains, vocabulary, model, optimizer) and `resume`
(the checkpoint's weights, optimizer, schedule, RNG and stream positions), both in
`lm.run_state`, then one loop of `train_step` (a batch of `--batch-size` x `--block-size` tokens
from the domain that `MixtureSampler` picks for the step, AdamW on `GRULM.loss`, gradient
clipping, linear warmup then cosine decay over `--max-steps` or the time budget),
`evaluate_periodic` every `--eval-every` steps (each domain on its first `--eval-tokens`
validation targets, and the weighted objective sum_i w_i * loss_i) and `save` every
`--checkpoint-every` steps or `--checkpoint-seconds`; `finish` scores the whole validation
splits (`lm.evaluate`) and the n-gram baselines (`lm.baselines`), counts compute
(`lm.accounting`) and writes `RUN/metrics.json` (`lm.metrics`) and the plots (`lm.plots`).

A plain `--data DIR` is a mixture of one domain (`lm.domains`): the same loop, checkpoint and
metrics layout as several. The model vocabulary is the union of the domains' vocabularies, or
with `--init-from` the checkpoint's, through which every domain is mapped (characters the
checkpoint lacks become `<unk>`; their count is printed and kept in metrics.json); `--init-from`
takes the weights and shape of a trained model and starts a new run from them (fresh optimizer
and schedule).
"""

from __future__ import annotations

import os
import sys
import time

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from lm.accounting import accounting
from lm.baselines import cached_baselines
from lm.data import (
    TrainStream,
    in_worker_order,
    iter_document_blocks,
    iter_documents,
    split_chars,
)
from lm.domains import Domain, objective
from lm.errors import LMError, exit_with
from lm.evaluate import evaluate
from lm.files import write_json
from lm.holdout import iter_holdout_documents
from lm.interpolate import interpolate
from lm.metrics import build_metrics
from lm.ngram_tables import CountTables
from lm.plots import plot_run
from lm.run_state import Run, resume, save, setup
from lm.train_options import build_parser, parse_args

__all__ = ["build_parser", "main", "train"]


def train(args) -> dict:
    """The run, as the module docstring says; returns its metrics."""
    run = setup(args)
    resume(run)
    hw = run.hardware
    print(
        f"threads {hw['threads']} ({hw['threads_reason']}); amp {hw['amp']} ({hw['amp_reason']})",
        file=sys.stderr,
    )
    state = run.state
    if (args.init_from or run.several) and state["step"] == 0 and not state["history"]:
        # a pretrained model, or several domains: where each domain starts is worth a point
        result = evaluate_periodic(run)
        print(
            f"step 0: {'weighted ' if run.several else ''}val {result['loss']:.4f} "
            f"(ppl {result['perplexity']:.2f})" + per_domain(run),
            file=sys.stderr,
        )
    batches = Batches(run)
    run.model.train()
    bar = tqdm(
        total=args.max_steps,
        initial=state["step"],
        disable=not args.progress,
        dynamic_ncols=True,
        mininterval=2.0,
        desc="train",
    )
    loop_start, loop_base = time.time(), state["loop_seconds"]
    last_checkpoint = time.time()
    while not done(run):
        step_start = time.time()
        loss = train_step(run, batches)
        state["train_seconds"] += time.time() - step_start
        state["loop_seconds"] = loop_base + time.time() - loop_start
        if args.simulate_crash_at is not None and state["step"] >= args.simulate_crash_at:
            raise RuntimeError(f"simulated crash after step {state['step']}")
        bar.update(1)
        bar.set_postfix(
            loss=f"{loss:.3f}",
            lr=f"{run.schedule.last_lr:.2e}",
            tok_s=f"{state['tokens'] / max(state['train_seconds'], 1e-9):,.0f}",
            refresh=False,
        )
        if state["step"] % args.eval_every == 0 or done(run):
            bar.write(describe(run, evaluate_periodic(run)))
            state["loop_seconds"] = loop_base + time.time() - loop_start
        if (
            state["step"] % args.checkpoint_every == 0
            or done(run)
            or time.time() - last_checkpoint >= args.checkpoint_seconds
        ):
            save(run)
            last_checkpoint = time.time()
            state["loop_seconds"] = loop_base + time.time() - loop_start
    bar.close()
    batches.close()
    return finish(run)


class Batches:
    """One training stream per domain, opened at its first batch where the run state says it
    stands (a domain of weight 0 never opens one)."""

    def __init__(self, run: Run):
        self.run, self.iterators, self.workers = run, {}, {}

    def next(self, name: str) -> dict:
        if name not in self.iterators:
            run, args = self.run, self.run.args
            d = next(x for x in run.domains if x.name == name)
            pos = run.state["domains"][name]
            stream = TrainStream(
                d.dir,
                d.manifest,
                run.vocab,
                args.batch_size,
                args.block_size,
                seed=args.seed,
                start=pos["data_position"],
                holdout=run.holdout.get(name),
                lanes=args.carry_state,
            )
            loader = DataLoader(
                stream,
                batch_size=None,
                num_workers=args.workers,
                pin_memory=run.device.type == "cuda",
                prefetch_factor=4 if args.workers else None,
                # its own generator: creating the iterator must not draw from
                # the global RNG, whose state (dropout) is in the checkpoint
                generator=torch.Generator().manual_seed(args.seed),
            )
            self.workers[name] = stream.active_workers(args.workers)
            self.iterators[name] = in_worker_order(loader, self.workers[name], pos["next_worker"])
        return next(self.iterators[name])

    def close(self) -> None:
        self.iterators.clear()


def train_step(run: Run, batches: Batches) -> float:
    """One optimizer step on a batch of the domain the sampler picks for this step; the loss."""
    state, model, optimizer = run.state, run.model, run.optimizer
    name = run.sampler.domain_at(state["step"])
    batch = batches.next(name)
    x = batch["x"].to(run.device, non_blocking=True)
    y = batch["y"].to(run.device, non_blocking=True)
    run.schedule.set(state["step"], state["loop_seconds"])
    worker = int(batch["worker"])
    if run.args.carry_state:  # row b continues row b of this stream's previous batch
        key = (name, worker)
        h = run.hidden.get(key) if int(batch["index"]) > 0 else None
        with run.autocast():
            loss, targets, h = model.loss_with_state(x, y, h)
        run.hidden[key] = h.detach()
    else:
        with run.autocast():
            loss, targets = model.loss(x, y)
    optimizer.zero_grad(set_to_none=True)
    if run.scaler is not None:
        run.scaler.scale(loss).backward()
        run.scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), run.args.grad_clip)
        run.scaler.step(optimizer)
        run.scaler.update()
    else:
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), run.args.grad_clip)
        optimizer.step()
    value, n = loss.item(), int(targets)
    pos = state["domains"][name]
    pos["data_position"][worker] = (int(batch["epoch"]), int(batch["index"]) + 1)
    pos["next_worker"] = (worker + 1) % batches.workers[name]
    pos["epoch"] = int(batch["epoch"])
    for counters in (state, pos):
        counters["tokens"] += n
        counters["loss_sum"] += value * n
        counters["loss_tokens"] += n
    state["step"] += 1
    pos["steps"] += 1
    return value


def score(
    run: Run,
    d: Domain,
    max_tokens: int | None = None,
    chars: int | None = None,
    documents=None,
    token_log_probs: bool = False,
) -> dict:
    """`lm.evaluate` of the model on domain `d`'s validation split (or on `documents`)."""
    return evaluate(
        run.model,
        documents or iter_documents(d.dir, d.manifest, run.vocab, "val"),
        run.device,
        lanes=run.args.eval_lanes,
        block_size=run.args.block_size,
        max_tokens=max_tokens,
        chars=chars,
        autocast=run.autocast() if run.amp != "off" else None,
        token_log_probs=token_log_probs,
    )


def evaluate_periodic(run: Run) -> dict:
    """Every domain on its first --eval-tokens validation targets, and the weighted objective;
    appends the history entry (and starts the train-loss averages afresh)."""
    state = run.state
    train_loss = state["loss_sum"] / max(state["loss_tokens"], 1) if state["step"] else None
    results, per = {}, {}
    for d in run.domains:
        r = results[d.name] = score(run, d, run.args.eval_tokens or None)
        p = state["domains"][d.name]
        per[d.name] = {
            "weight": d.weight,
            "val_loss": r["loss"],
            "val_perplexity": r["perplexity"],
            "val_tokens": r["tokens"],
            "train_loss": p["loss_sum"] / p["loss_tokens"] if p["loss_tokens"] else None,
            "steps": p["steps"],
            "tokens_seen": p["tokens"],
        }
        p["loss_sum"], p["loss_tokens"] = 0.0, 0
    result = objective(results, run.domains)
    state["history"].append(
        {
            "step": state["step"],
            "tokens_seen": state["tokens"],
            "train_loss": train_loss,
            "val_loss": result["loss"],
            "val_perplexity": result["perplexity"],
            "val_tokens": result["tokens"],
            "lr": run.schedule.last_lr,
            "seconds": state["loop_seconds"],
            "domains": per,
        }
    )
    state["loss_sum"], state["loss_tokens"] = 0.0, 0
    return result


def describe(run: Run, result: dict) -> str:
    """The line of a periodic evaluation, with each domain's perplexity when there are several."""
    entry = run.state["history"][-1]
    line = (
        f"step {entry['step']}: train {entry['train_loss']:.4f} val {result['loss']:.4f} "
        f"(ppl {result['perplexity']:.2f} on {result['tokens']} tokens)"
    )
    return line + per_domain(run)


def per_domain(run: Run) -> str:
    if not run.several:
        return ""
    return " | " + ", ".join(
        f"{k} ppl {v['val_perplexity']:.2f}" for k, v in run.state["history"][-1]["domains"].items()
    )


def out_of_time(run: Run) -> bool:
    budget = run.args.time_budget
    return budget is not None and run.state["loop_seconds"] >= budget


def done(run: Run) -> bool:
    steps = run.args.max_steps
    return (steps is not None and run.state["step"] >= steps) or out_of_time(run)


def finish(run: Run) -> dict:
    """Whole validation splits, baselines, compute; writes metrics.json and the plots."""
    args, state = run.args, run.state
    final_start = time.time()
    finals = {}
    mixing = args.baselines and any(run.holdout.values())
    for d in run.domains:
        chars = split_chars(d.dir, d.manifest, "val")
        r = finals[d.name] = score(run, d, None, chars, token_log_probs=mixing)
        print(
            f"final{' ' + d.name if run.several else ''}: val perplexity "
            f"{r['perplexity']:.3f}, {r['bits_per_char']:.4f} bits/char over {r['tokens']} "
            f"tokens ({time.time() - final_start:.1f}s)",
            file=sys.stderr,
        )
    final = objective(finals, run.domains)
    if run.several:
        print(f"final weighted objective: perplexity {final['perplexity']:.3f}", file=sys.stderr)
    baselines = (
        {
            d.name: cached_baselines(
                args.out, d, run.vocab, args.add_k, d.name if run.several else ""
            )
            for d in run.domains
        }
        if args.baselines
        else {}
    )
    compute = accounting(
        run.model,
        state["tokens"],
        state["train_seconds"],
        state["loop_seconds"],
        args.price_per_hour,
        args.price_per_million_tokens,
    )
    mixed = {d.name: interpolation(run, d, finals[d.name]) for d in run.domains} if mixing else {}
    metrics = build_metrics(run, finals, final, baselines, compute, time.time() - final_start)
    for name, result in mixed.items():
        if result is not None:
            metrics["domains"][name]["interpolated"] = result
    if not run.several and mixed.get(run.domains[0].name):
        metrics["interpolated"] = mixed[run.domains[0].name]
    write_json(os.path.join(args.out, "metrics.json"), metrics)
    if args.plots:
        plot_run(args.out, run.domains, run.vocab, metrics)
    return metrics


def interpolation(run: Run, d: Domain, final: dict) -> dict | None:
    """GRU + Kneser-Ney on domain `d` (`lm.interpolate`), or None without a held-out slice."""
    rows = run.holdout.get(d.name)
    val_gru = final.pop("token_log_probs")
    if not rows:
        return None
    start = time.time()
    docs = list(iter_holdout_documents(d.dir, d.manifest, run.vocab, rows))
    held = score(run, d, documents=iter(docs), token_log_probs=True)["token_log_probs"]
    tables = CountTables.from_parquet(d.dir, d.manifest, run.vocab)
    blocks = list(iter_document_blocks(d.dir, d.manifest, run.vocab, "val"))
    result = interpolate(tables, docs, held, blocks, val_gru)
    result["seconds"] = time.time() - start
    print(
        f"interpolated{' ' + d.name if run.several else ''}: GRU + {result['with']} "
        f"(GRU weight {result['weight']:.3f}, fitted on {result['holdout_tokens']} held-out "
        f"train tokens): val perplexity {result['val_perplexity']:.3f}",
        file=sys.stderr,
    )
    return result


def verdict(metrics: dict) -> str:
    """One line: whether the GRU beats every baseline printed, and if not, why not."""
    if not metrics["baselines"]:
        return "no baselines were scored (--no-baselines)"
    best = min(metrics["baselines"], key=metrics["baselines"].get)
    gru, ppl = metrics["val_perplexity"], metrics["baselines"][best]
    if gru < ppl:
        return f"the GRU beats every baseline (best: {best} {ppl:.3f})"
    c, hw = metrics["compute"], metrics.get("hardware", {})
    epochs = max(metrics["epochs_started"].values())
    load = hw.get("load_average_at_start") or [float("nan")]
    seen = [h["val_perplexity"] for h in metrics["history"]][-3:]
    trend = " -> ".join(f"{v:.2f}" for v in seen)
    still = len(seen) > 1 and seen[-1] < seen[-2]
    return (
        f"the GRU ({gru:.3f}) does not beat {best} ({ppl:.3f}): it trained on "
        f"{c['tokens_seen']:,} tokens ({metrics['steps']} steps, epoch {epochs}) at "
        f"{c['tokens_per_second']:,.0f} tokens/s on {metrics['torch_threads']} thread(s) "
        f"(load average {load[0]:.1f}, amp {metrics['amp']}), where the n-gram counts saw the "
        f"whole train split; its periodic val perplexity {trend}"
        + (": still improving, more --max-steps / --time-budget" if still else "")
    )


def print_summary(metrics: dict, out: str) -> None:
    if len(metrics["domains"]) > 1:
        print(f"{'domain':<16} {'weight':>7} {'val perplexity':>15} {'bits/char':>10}")
        for name, d in metrics["domains"].items():
            print(
                f"{name:<16} {d['weight']:>7.3f} {d['val_perplexity']:>15.3f} "
                f"{d['val_bits_per_char']:>10.4f}"
            )
        print(
            f"{'weighted':<16} {1:>7.3f} {metrics['val_perplexity']:>15.3f} "
            f"{metrics['val_bits_per_char']:>10.4f}"
        )
    print(f"{'model':<24} {'val perplexity':>15}")
    for name, ppl in {"gru": metrics["val_perplexity"], **metrics["baselines"]}.items():
        print(f"{name:<24} {ppl:>15.3f}")
    if "interpolated" in metrics:
        mix = metrics["interpolated"]
        name = f"gru+{mix['with']} w={mix['weight']:.2f}"
        print(f"{name:<24} {mix['val_perplexity']:>15.3f}")
    print(verdict(metrics))
    print(f"metrics: {os.path.join(out, 'metrics.json')}")


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        metrics = train(args)
    except LMError as e:
        return exit_with(e)
    print_summary(metrics, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
