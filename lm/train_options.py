"""The flags of `python -m lm.train`, one builder per group, and their checks."""

from __future__ import annotations

import argparse
import sys

from beam_jobs.runtime.flags import BoolFlag, legacy_bool_values
from lm.errors import OptionError

# options that must not change when a run is resumed
FIXED_ON_RESUME = (
    "seed",
    "batch_size",
    "block_size",
    "emb_dim",
    "hidden",
    "layers",
    "dropout",
    "head",
    "lr",
    "min_lr_ratio",
    "warmup_steps",
    "weight_decay",
    "grad_clip",
    "workers",
    "max_steps",
    "time_budget",
    "amp",
    "init_from",
    "mix_temperature",
    "interpolation_holdout_tokens",
    "carry_state",
)
MODEL_DEFAULTS = {"emb_dim": 128, "hidden": 512, "layers": 1, "dropout": 0.0, "head": "auto"}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m lm.train",
        description="Train a GRU language model on the output of beam_jobs.prepare and write "
        "RUN/metrics.json, RUN/checkpoint.pt and plots.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_run_options(ap)
    add_stop_options(ap.add_argument_group("when to stop (at least one)"))
    add_model_options(
        ap.add_argument_group(
            "model (defaults: emb-dim 128, hidden 512, layers 1, dropout 0, head auto; with "
            "--init-from, the checkpoint's)"
        )
    )
    add_optimization_options(ap.add_argument_group("optimization"))
    add_system_options(ap.add_argument_group("system"))
    add_output_options(ap.add_argument_group("evaluation, checkpoints, outputs"))
    return ap


def add_run_options(ap) -> None:
    ap.add_argument(
        "--data",
        required=True,
        action="append",
        help="pipeline output directory (manifest.json); for a mixture, repeat as "
        "NAME=DIR:WEIGHT (weight 0: evaluated, never trained on), or NAME=DIR "
        "with --mix-temperature",
    )
    ap.add_argument(
        "--mix-temperature",
        type=float,
        default=None,
        metavar="T",
        help="mixture weights from the domains' train tokens: p_i ~ size_i^(1/T) "
        "(1: proportional to size; large: uniform)",
    )
    ap.add_argument(
        "--init-from",
        default=None,
        metavar="CHECKPOINT",
        help="start from this trained checkpoint's weights, shape and vocabulary "
        "(continued pretraining; new optimizer and schedule). Characters of the "
        "data missing from its vocabulary map to <unk>",
    )
    ap.add_argument("--out", required=True, help="run directory")
    ap.add_argument(
        "--resume",
        action="store_true",
        help="continue from RUN/checkpoint.pt (model, optimizer, schedule, RNG, data position)",
    )
    ap.add_argument("--simulate-crash-at", type=int, default=None, help=argparse.SUPPRESS)


def add_stop_options(g) -> None:
    g.add_argument("--max-steps", type=int, default=None)
    g.add_argument(
        "--time-budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wall-clock seconds of the training loop (periodic evaluation and "
        "checkpoints included; start-up and the final evaluation excluded)",
    )


def add_model_options(g) -> None:
    g.add_argument("--emb-dim", type=int, default=None)
    g.add_argument("--hidden", type=int, default=None)
    g.add_argument("--layers", type=int, default=None)
    g.add_argument("--dropout", type=float, default=None)
    g.add_argument(
        "--head",
        default=None,
        choices=("auto", "full", "adaptive"),
        help="output softmax; auto: adaptive above 1024 tokens",
    )


def add_optimization_options(g) -> None:
    g.add_argument("--batch-size", type=int, default=32)
    g.add_argument(
        "--carry-state",
        action=BoolFlag,
        default=False,
        help="rows of a batch continue the rows of the batch before (contiguous lanes of "
        "documents) and the GRU carries its hidden state across them (truncated BPTT), as "
        "the evaluation does; off: shuffled contexts, each from a zero state (measured "
        "better at the quick start's 300 steps: 12.68 against 12.97, docs/lm_defaults.md)",
    )
    g.add_argument("--block-size", type=int, default=128)
    g.add_argument("--lr", type=float, default=3e-3)
    g.add_argument("--min-lr-ratio", type=float, default=0.1, help="final lr / peak lr")
    g.add_argument("--warmup-steps", type=int, default=100)
    g.add_argument("--weight-decay", type=float, default=0.01)
    g.add_argument("--grad-clip", type=float, default=1.0)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument(
        "--amp",
        default="auto",
        choices=("auto", "off", "bf16", "fp16"),
        help="mixed precision; auto: bf16 (or fp16) on CUDA; on CPU bf16 where a short "
        "probe of this model shape measures it faster than float32 (lm.hardware)",
    )


def add_system_options(g) -> None:
    g.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    g.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads; 0: the cores idle now (/proc/stat over 0.5 s, not the "
        "load average, which still counts a run that just ended), at least 1. "
        "Oversubscribed cores slow torch down badly",
    )
    g.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")


def add_output_options(g) -> None:
    g.add_argument("--eval-every", type=int, default=500, help="steps between evaluations")
    g.add_argument(
        "--eval-tokens",
        type=int,
        default=262144,
        help="validation targets used by periodic evaluations (0: all); the final "
        "evaluation always uses the whole split",
    )
    g.add_argument("--eval-lanes", type=int, default=64)
    g.add_argument("--checkpoint-every", type=int, default=500)
    g.add_argument("--checkpoint-seconds", type=float, default=300.0)
    g.add_argument(
        "--baselines",
        action=BoolFlag,
        default=True,
        help="evaluate the n-gram baselines on the same validation tokens",
    )
    g.add_argument("--add-k", type=float, default=1.0, help="k of the add-k baselines")
    g.add_argument(
        "--interpolation-holdout-tokens",
        type=int,
        default=100_000,
        metavar="N",
        help="train tokens (at most 1/20 of the split) held out of training and of the "
        "n-gram counts, on which the GRU + Kneser-Ney mixture weight and order are fitted "
        "(metrics.json `interpolated`); 0: no interpolation, train on everything",
    )
    g.add_argument(
        "--price-per-hour",
        type=float,
        default=None,
        help="machine price per hour for the cost estimate",
    )
    g.add_argument("--price-per-million-tokens", type=float, default=None)
    g.add_argument("--plots", action=BoolFlag, default=True, help="write the PNG plots")
    g.add_argument("--progress", action=BoolFlag, default=True, help="progress bar")


def check_options(args) -> None:
    """Combinations refused before any work (`OptionError`)."""
    if args.max_steps is None and args.time_budget is None:
        raise OptionError("give --max-steps and/or --time-budget")
    if args.interpolation_holdout_tokens < 0:
        raise OptionError("--interpolation-holdout-tokens must be 0 or more")


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
            raise OptionError(
                f"--{k.replace('_', '-')} {given} differs from the --init-from "
                f"checkpoint's {cfg[k]}; the model shape comes from the checkpoint"
            )
        setattr(args, k, cfg[k])
    if args.head not in (None, "auto", cfg["head"]):
        raise OptionError(
            f"--head {args.head} differs from the --init-from checkpoint's {cfg['head']}"
        )
    args.head = cfg["head"]
    if args.dropout is None:
        args.dropout = cfg["dropout"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The flags of `lm.train`; the old value forms of its booleans (`--baselines off`) still
    parse, with a warning."""
    parser = build_parser()
    return parser.parse_args(
        legacy_bool_values(sys.argv[1:] if argv is None else list(argv), parser)
    )
