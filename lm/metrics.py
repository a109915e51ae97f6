"""`RUN/metrics.json`: what a finished run reports, its layout versions, and reading it back.

Layout version 2 (`format_version: 2`), the same for one domain and for several:

    val_perplexity, val_bits_per_char, val_loss, val_tokens, val_chars
        the final objective over the whole validation splits: sum_i w_i * loss_i over the
        domains (one domain: its own loss), perplexity exp(that), bits/char sum_i w_i * bpc_i
    baselines        n-gram baseline -> perplexity of the same objective
    domains          per domain: dir, weight, fingerprint, its own val_* numbers, train steps
                     and tokens, unk_mapped, baselines and baseline_details
    mixture          weights, temperature, sampler
    history          per periodic evaluation: step, tokens_seen, train_loss, val_loss,
                     val_perplexity, val_tokens, lr, seconds, and domains (per-domain values)
    tokens_per_second, flops, compute, steps, epochs_started (per domain), scoring, config,
    model, device, amp, torch_threads, hardware (threads, amp and CUDA settings chosen, each
    with its reason and the bf16 probe's figures; load averages at start and end), data,
    init_from, final_eval_seconds, total_wall_seconds

Version 1 (no `format_version` key) had no `domains`, `mixture` or per-domain history for a
plain --data DIR, and a mixture's baselines under "NAME:baseline" keys. `read_metrics` returns
either version in layout 2.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict

import torch

from lm.data import data_fingerprint
from lm.domains import SINGLE, fingerprint_of, weighted_baselines
from lm.errors import LMError

FORMAT_VERSION = 2
OBJECTIVE = (
    "weighted: sum_i w_i * val_loss_i over the domains (one domain: w = 1, its own "
    "loss); val_perplexity = exp(that); val_bits_per_char = sum_i w_i * bits/char_i; "
    "val_tokens/val_chars are sums; baselines: the same objective for each n-gram "
    "baseline"
)
SCORING = (
    "each validation document is <bos> t1..tk <eos>; t1..tk and <eos> are predicted "
    "(k+1 tokens), out-of-vocabulary tokens are <unk>; perplexity = exp(total NLL / "
    "predicted tokens); bits/char = total NLL / ln 2 / val characters (sum of n_chars)"
)


def sampler_note(seed: int) -> str:
    return (
        f"one domain per step, i.i.d. with these weights, seed {seed} (lm.mixture.MixtureSampler)"
    )


def baseline_losses(results: dict) -> dict:
    """{baseline: loss} from `lm.ngram.evaluate_baselines` results."""
    return {name: r["nll"] / max(r["tokens"], 1) for name, r in results.items()}


def build_metrics(
    run, finals: dict, final: dict, baselines: dict, compute: dict, final_seconds: float
) -> dict:
    """The layout-2 metrics of a finished `lm.train.Run`: `finals` and `final` are the
    per-domain and weighted whole-split results, `baselines` {domain: baseline results}."""
    args, state, domains = run.args, run.state, run.domains
    weights = {d.name: d.weight for d in domains}
    per_domain = {
        d.name: {
            "dir": os.path.abspath(d.dir),
            "weight": d.weight,
            "fingerprint": data_fingerprint(d.manifest),
            "val_perplexity": finals[d.name]["perplexity"],
            "val_bits_per_char": finals[d.name]["bits_per_char"],
            "val_loss": finals[d.name]["loss"],
            "val_tokens": finals[d.name]["tokens"],
            "val_chars": finals[d.name]["chars"],
            "train_steps": state["domains"][d.name]["steps"],
            "train_tokens": state["domains"][d.name]["tokens"],
            "unk_mapped": run.unk_mapped[d.name],
            "baselines": {k: v["perplexity"] for k, v in baselines.get(d.name, {}).items()},
            "baseline_details": baselines.get(d.name, {}),
        }
        for d in domains
    }
    metrics = {
        "format_version": FORMAT_VERSION,
        "val_perplexity": final["perplexity"],
        "val_bits_per_char": final["bits_per_char"],
        "val_loss": final["loss"],
        "val_tokens": final["tokens"],
        "val_chars": final["chars"],
        "baselines": weighted_baselines(
            {name: baseline_losses(r) for name, r in baselines.items()}, weights
        ),
        "objective": OBJECTIVE,
        "domains": per_domain,
        "mixture": {
            "weights": weights,
            "temperature": args.mix_temperature,
            "sampler": sampler_note(args.seed),
            "periodic_eval_tokens_per_domain": args.eval_tokens or "all",
        },
        "history": state["history"],
        "tokens_per_second": compute["tokens_per_second"],
        "flops": compute["flops"],
        "compute": compute,
        "steps": state["step"],
        "epochs_started": {d.name: state["domains"][d.name]["epoch"] + 1 for d in domains},
        "scoring": SCORING,
        "config": {k: v for k, v in vars(args).items() if k != "simulate_crash_at"},
        "model": asdict(run.model.config),
        "device": str(run.device),
        "amp": run.amp,
        "torch_threads": torch.get_num_threads(),
        "hardware": {
            **run.hardware,
            "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
        "data": {
            "dir": [os.path.abspath(d.dir) for d in domains],
            "fingerprint": run.fingerprint,
            "vocab_size": len(run.vocab),
            "tokenizer": domains[0].manifest["tokenizer"],
        },
    }
    if args.init_from:
        metrics["init_from"] = {
            "checkpoint": os.path.abspath(args.init_from),
            "unk_mapped": run.unk_mapped,
        }
    metrics["final_eval_seconds"] = final_seconds
    metrics["total_wall_seconds"] = time.time() - run.started
    return metrics


def upgrade_history(history: list[dict], name: str) -> list[dict]:
    """Layout-1 history entries of a plain --data DIR, with the per-domain values of its one
    domain (weight 1) that layout 2 keeps in every entry."""
    return [
        {
            **h,
            "domains": {
                name: {
                    "weight": 1.0,
                    "val_loss": h["val_loss"],
                    "val_perplexity": h["val_perplexity"],
                    "val_tokens": h["val_tokens"],
                    "train_loss": h["train_loss"],
                    "steps": h["step"],
                    "tokens_seen": h["tokens_seen"],
                }
            },
        }
        if "domains" not in h
        else h
        for h in history
    ]


def read_metrics(path: str) -> dict:
    """A run's metrics.json (a file, or the run directory holding it) in layout 2."""
    if os.path.isdir(path):
        path = os.path.join(path, "metrics.json")
    try:
        with open(path, encoding="utf-8") as f:
            metrics = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise LMError(f"{path}: unreadable metrics ({e})") from None
    version = metrics.get("format_version", 1) if isinstance(metrics, dict) else None
    if version == 1:
        return upgrade_v1(metrics)
    if version != FORMAT_VERSION:
        raise LMError(
            f"{path}: metrics format_version {version!r}; this version of lm reads "
            f"versions 1 and {FORMAT_VERSION}"
        )
    return metrics


def upgrade_v1(m: dict) -> dict:
    """Layout-1 metrics in layout 2."""
    m = dict(m)
    details = m.pop("baseline_details", {})
    if "domains" not in m:  # a plain --data DIR: the one domain "data" of weight 1
        unk = (m.get("init_from") or {}).get("unk_mapped", {}).get(SINGLE)
        m["domains"] = {
            SINGLE: {
                "dir": m["data"]["dir"],
                "weight": 1.0,
                "fingerprint": m["data"]["fingerprint"],
                **{
                    k: m[k]
                    for k in (
                        "val_perplexity",
                        "val_bits_per_char",
                        "val_loss",
                        "val_tokens",
                        "val_chars",
                    )
                },
                "train_steps": m["steps"],
                "train_tokens": m["compute"]["tokens_seen"],
                "unk_mapped": unk,
                "baselines": m["baselines"],
                "baseline_details": details,
            }
        }
        m["mixture"] = {
            "weights": {SINGLE: 1.0},
            "temperature": None,
            "sampler": sampler_note(m["config"].get("seed", 0)),
            "periodic_eval_tokens_per_domain": m["config"].get("eval_tokens") or "all",
        }
        m["history"] = upgrade_history(m["history"], SINGLE)
        m["epochs_started"] = {SINGLE: m["epochs_started"]}
        m["data"] = {
            **m["data"],
            "dir": [m["data"]["dir"]],
            "fingerprint": fingerprint_of([(SINGLE, m["data"]["fingerprint"], 1.0)]),
        }
    else:  # a mixture: per-domain baselines were "NAME:baseline" keys
        for name, d in m["domains"].items():
            d["baseline_details"] = {
                k.split(":", 1)[1]: v for k, v in details.items() if k.split(":", 1)[0] == name
            }
        m["baselines"] = weighted_baselines(
            {
                name: {b: math.log(p) for b, p in d["baselines"].items()}
                for name, d in m["domains"].items()
            },
            m["mixture"]["weights"],
        )
    m["objective"] = OBJECTIVE
    return {"format_version": FORMAT_VERSION, **m}
