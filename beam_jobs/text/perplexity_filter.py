"""Perplexity as a data signal: every clean document scored by an n-gram model that `lm.ngram
--save-model` built from a reference output (interpolated Kneser-Ney, numpy only on the workers:
`beam_jobs.text.perplexity.NgramScorer`), written as a `perplexity` column, and filtered by
`--max-perplexity` (text unlike the reference: boilerplate, lists, mojibake, other languages)
and `--min-perplexity` (text too predictable: repeated templates). Each decision is counted
(`perplexity/scored`, `filter/<reason>`) and a removed document is `Filtered` with its reason,
so the accounting identity holds. The score is that of `lm`: `<bos> text <eos>`, characters
outside the model's vocabulary as `<unk>`.
"""

from __future__ import annotations

import dataclasses
import math

import apache_beam as beam

from beam_jobs.records import Document, Filtered
from beam_jobs.text.clean import FILTERED

ABOVE_MAX, BELOW_MIN = "perplexity_above_max", "perplexity_below_min"


@dataclasses.dataclass(frozen=True)
class PerplexityConfig:
    model: str  # an .npz of `lm.ngram --save-model`, on any Beam filesystem
    max_perplexity: float | None = None
    min_perplexity: float | None = None

    def reason(self, perplexity: float) -> str | None:
        if self.max_perplexity is not None and perplexity > self.max_perplexity:
            return ABOVE_MAX
        if self.min_perplexity is not None and perplexity < self.min_perplexity:
            return BELOW_MIN
        return None

    def settings(self) -> dict:
        return dataclasses.asdict(self)


def add_perplexity_args(parser) -> None:
    g = parser.add_argument_group("perplexity filter (opt-in; docs/lm.md)")
    g.add_argument(
        "--perplexity-model",
        default=None,
        metavar="FILE.npz",
        help="score every document with this n-gram model (`python -m lm.ngram "
        "--data REFERENCE_OUTPUT --save-model FILE.npz`): a perplexity column",
    )
    g.add_argument(
        "--max-perplexity",
        type=float,
        default=None,
        help="filter documents above this perplexity (perplexity_above_max)",
    )
    g.add_argument(
        "--min-perplexity",
        type=float,
        default=None,
        help="filter documents below this perplexity (perplexity_below_min)",
    )


def load_scorer(path: str):
    """The saved model at `path` (any Beam filesystem); ValueError (one line) if unreadable."""
    from apache_beam.io.filesystems import FileSystems

    from beam_jobs.text.perplexity import NgramScorer

    if not FileSystems.exists(path):
        raise ValueError(f"--perplexity-model {path}: no such file")
    with FileSystems.open(path) as handle:
        return NgramScorer.load(handle, path)


def perplexity_config(opts) -> PerplexityConfig | None:
    """The validated config of the flags, or None without --perplexity-model; ValueError (one
    line) for values that cannot work. The model is loaded once here to check it."""
    lo, hi, model = opts.min_perplexity, opts.max_perplexity, opts.perplexity_model
    if model is None:
        if lo is not None or hi is not None:
            raise ValueError("--max-perplexity/--min-perplexity need --perplexity-model")
        return None
    for flag, v in (("--max-perplexity", hi), ("--min-perplexity", lo)):
        if v is not None and not (math.isfinite(v) and v >= 1):
            raise ValueError(f"{flag} must be a finite perplexity of at least 1, got {v}")
    if lo is not None and hi is not None and lo >= hi:
        raise ValueError(f"--min-perplexity {lo} must be below --max-perplexity {hi}")
    scorer = load_scorer(model)
    if not scorer.tokens:
        raise ValueError(f"--perplexity-model {model}: the file holds no vocabulary")
    return PerplexityConfig(model, hi, lo)


class ScorePerplexityFn(beam.DoFn):
    """`Document` → the `Document` with its perplexity, or `Filtered` with the reason."""

    def __init__(self, config: PerplexityConfig):
        self.config = config

    def setup(self):
        self.scorer = load_scorer(self.config.model)
        self.scored = beam.metrics.Metrics.counter("perplexity", "scored")
        self.values = beam.metrics.Metrics.distribution("perplexity", "value_x100")

    def process(self, doc: Document):
        perplexity = self.scorer.perplexity(doc.text)
        self.scored.inc()
        self.values.update(int(min(perplexity, 1e12) * 100))
        reason = self.config.reason(perplexity)
        if reason:
            beam.metrics.Metrics.counter("filter", reason).inc()
            yield beam.pvalue.TaggedOutput(FILTERED, Filtered(doc.id, doc.file, reason))
            return
        yield doc._replace(perplexity=perplexity)


class ScorePerplexity(beam.PTransform):
    """`Document`s → {'docs': scored `Document`s, 'filtered': `Filtered` rows}."""

    def __init__(self, config: PerplexityConfig):
        super().__init__()
        self.fn = ScorePerplexityFn(config)

    def expand(self, docs):
        out = docs | "Score" >> beam.ParDo(self.fn).with_outputs(FILTERED, main="docs")
        return {"docs": out.docs, "filtered": out[FILTERED]}
