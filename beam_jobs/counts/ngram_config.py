"""The n-gram counting flags beyond `--ngram-order`/`--ngram-shards` (pruning, memory) and
their validated `NgramConfig`."""

from __future__ import annotations

import dataclasses

from beam_jobs.counts.pruning import parse_min_counts, thresholds

DEFAULT_BUFFER_MB = 256.0


def add_ngram_args(parser) -> None:
    g = parser.add_argument_group("n-gram counting (see docs/lm.md)")
    g.add_argument(
        "--ngram-min-count",
        default="1",
        metavar="M[,M2,...]",
        help="prune n-grams whose train count is below M (KenLM's --prune, as a "
        "minimum): one value M prunes orders 3 and up (1,1,M,M,...); a comma "
        "list gives orders 1,2,3,... in turn, the last repeated; non-"
        "decreasing, order 1 never pruned. Kneser-Ney's continuation counts "
        "and discounts are taken before pruning (ngrams/_pruning.json)",
    )
    g.add_argument(
        "--ngram-buffer-mb",
        type=float,
        default=DEFAULT_BUFFER_MB,
        help="memory of the n-gram table a worker holds before it sends its "
        "partial counts on (bounds counting memory on the workers; a shard's "
        "final merge holds its distinct n-grams: raise --ngram-shards for a "
        "larger corpus)",
    )


@dataclasses.dataclass(frozen=True)
class NgramConfig:
    order: int = 3
    shards: int = 4
    min_counts: tuple[int, ...] = (1,)
    buffer_mb: float = DEFAULT_BUFFER_MB

    @classmethod
    def from_options(cls, opts) -> NgramConfig:
        """ValueError (one line) for values that cannot work."""
        if not opts.ngram_buffer_mb > 0:
            raise ValueError(f"--ngram-buffer-mb must be positive, got {opts.ngram_buffer_mb}")
        return cls(
            opts.ngram_order,
            opts.ngram_shards,
            parse_min_counts(opts.ngram_min_count),
            opts.ngram_buffer_mb,
        )

    def thresholds(self) -> list[int]:
        return thresholds(self.min_counts, self.order)
