"""Near dedup's settings: the `--near-*` flags, one validated `NearDedupConfig`, counters.

Flags were renamed with a `near-` prefix so that they read as near-dedup settings; the old
names (`--threshold`, `--keep`, `--verify`, `--bands`, ...) still work, with a warning.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
from apache_beam.metrics import Metrics

from beam_jobs.dedup import lsh
from beam_jobs.dedup.minhash import (
    DEFAULT_NUM_PERM,
    DEFAULT_SCHEME,
    DEFAULT_SEED,
    SCHEMES,
    MinHasher,
)
from beam_jobs.dedup.shingles import DEFAULT_SHINGLE_SIZE
from beam_jobs.runtime.flags import BoolFlag, add_renamed

NS = "near_dedup"
VERIFY_MODES = ("estimate", "exact", "none")
KEEP_POLICIES = ("smallest", "longest")
KEEP_RULES = ("twin", "components")
DEFAULT_MAX_COMPONENT_EDGES = 2_000_000
DEFAULT_THRESHOLD = 0.8
DEFAULT_FN_WEIGHT = 0.95
DEFAULT_CC_ROUNDS = 4  # corpora/ja converges in 3; the residual union-find finishes the rest
DEFAULT_MAX_BUCKET = 1000
DEFAULT_TRIAGE_SIGMAS = 4.0
# Shards of the LSH buckets: each holds bands x documents / this many band entries (about 60
# bytes each), 6 M at 100 M documents; more shards cost a few elements per bundle each.
DEFAULT_BUCKET_SHARDS = 256


def counter(name: str):
    return Metrics.counter(NS, name)


def counting(name: str):
    """A pass-through Map function that counts the elements it sees."""

    def count(element):
        counter(name).inc()
        return element

    return count


@dataclasses.dataclass(frozen=True)
class NearDedupConfig:
    """Every near-dedup setting, validated; `bands`/`rows` None means datasketch's optimum
    for the threshold (see `resolved`)."""

    threshold: float = DEFAULT_THRESHOLD
    num_perm: int = DEFAULT_NUM_PERM
    shingle_size: int = DEFAULT_SHINGLE_SIZE
    bands: int | None = None
    rows: int | None = None
    lsh_fn_weight: float = DEFAULT_FN_WEIGHT
    minhash_scheme: str = DEFAULT_SCHEME
    minhash_seed: int = DEFAULT_SEED
    verify: str = "exact"
    triage_sigmas: float = DEFAULT_TRIAGE_SIGMAS
    keep: str = "smallest"
    keep_rule: str = "twin"
    cc_rounds: int = DEFAULT_CC_ROUNDS
    max_bucket_size: int = DEFAULT_MAX_BUCKET
    bucket_shards: int = DEFAULT_BUCKET_SHARDS
    max_component_edges: int = DEFAULT_MAX_COMPONENT_EDGES

    def __post_init__(self):
        _validate(self)

    @classmethod
    def from_options(cls, opts) -> NearDedupConfig | None:
        """The config of parsed options (dests of `add_near_dedup_args`); None when off."""
        if not getattr(opts, "near_dedup", True):
            return None
        return cls(
            **{f.name: getattr(opts, "near_" + f.name) for f in dataclasses.fields(cls)}
        ).resolved()

    def resolved(self) -> NearDedupConfig:
        """The same config with bands x rows chosen when they were not given."""
        if self.bands is not None:
            return self
        bands, rows = lsh.optimal_params(
            self.threshold, self.num_perm, 1.0 - self.lsh_fn_weight, self.lsh_fn_weight
        )
        return dataclasses.replace(self, bands=bands, rows=rows)

    def hasher(self) -> MinHasher:
        return MinHasher(self.num_perm, self.minhash_seed, self.minhash_scheme, self.shingle_size)

    def margin(self) -> float:
        """`triage_sigmas` standard errors of a signature's Jaccard estimate at the threshold
        (the fraction of equal slots is binomial: sqrt(t(1-t)/num_perm))."""
        t = self.threshold
        return self.triage_sigmas * float(np.sqrt(t * (1 - t) / self.num_perm))

    def settings(self) -> dict:
        """What the manifest records (and the stage key hashes): everything that can change
        the output (`bucket_shards` cannot)."""
        return {
            "enabled": True,
            **self.hasher().settings(),
            "bands": self.bands,
            "rows": self.rows,
            "threshold": self.threshold,
            "lsh_fn_weight": self.lsh_fn_weight,
            "verify": self.verify,
            "triage_sigmas": self.triage_sigmas,
            "keep": self.keep,
            "keep_rule": self.keep_rule,
            "cc_rounds": self.cc_rounds,
            "max_bucket_size": self.max_bucket_size,
            "max_component_edges": self.max_component_edges,
        }


def _validate(c: NearDedupConfig) -> None:
    """Raise ValueError with a one-line message for a bad value."""
    if not 0.0 < c.threshold < 1.0:
        raise ValueError(f"--near-threshold must be in (0, 1), got {c.threshold}")
    if not 1 <= c.num_perm <= 4096:
        raise ValueError(f"--near-num-perm must be in [1, 4096], got {c.num_perm}")
    if c.shingle_size < 1:
        raise ValueError(f"--near-shingle-size must be >= 1, got {c.shingle_size}")
    if (c.bands is None) != (c.rows is None):
        raise ValueError("--near-bands and --near-rows must be given together")
    if c.bands is not None:
        if c.bands < 1 or c.rows < 1:
            raise ValueError(f"--near-bands and --near-rows must be >= 1, got {c.bands} x {c.rows}")
        if c.bands * c.rows > c.num_perm:
            raise ValueError(
                f"--near-bands x --near-rows ({c.bands} x {c.rows}) exceeds "
                f"--near-num-perm {c.num_perm}"
            )
    if not 0.0 < c.lsh_fn_weight < 1.0:
        raise ValueError(f"--near-lsh-fn-weight must be in (0, 1), got {c.lsh_fn_weight}")
    if c.minhash_scheme not in SCHEMES:
        raise ValueError(
            f"--near-minhash-scheme must be one of {SCHEMES}, got {c.minhash_scheme!r}"
        )
    if not 0 <= c.minhash_seed < 2**32:
        raise ValueError(f"--near-minhash-seed must be in [0, 2**32), got {c.minhash_seed}")
    if c.verify not in VERIFY_MODES:
        raise ValueError(f"--near-verify must be one of {VERIFY_MODES}, got {c.verify!r}")
    if not c.triage_sigmas >= 0:
        raise ValueError(f"--near-triage-sigmas must be >= 0, got {c.triage_sigmas}")
    if c.keep not in KEEP_POLICIES:
        raise ValueError(f"--near-keep must be one of {KEEP_POLICIES}, got {c.keep!r}")
    if c.keep_rule not in KEEP_RULES:
        raise ValueError(f"--near-keep-rule must be one of {KEEP_RULES}, got {c.keep_rule!r}")
    if c.max_component_edges < 1:
        raise ValueError(f"--near-max-component-edges must be >= 1, got {c.max_component_edges}")
    if c.cc_rounds < 1:
        raise ValueError(f"--near-cc-rounds must be >= 1, got {c.cc_rounds}")
    if c.max_bucket_size < 2:
        raise ValueError(f"--near-max-bucket-size must be >= 2, got {c.max_bucket_size}")
    if not 1 <= c.bucket_shards <= 1 << 20:
        raise ValueError(f"--near-bucket-shards must be in [1, 2**20], got {c.bucket_shards}")


def add_near_dedup_args(parser: argparse.ArgumentParser) -> None:
    """Register the near-dedup flags (dests `near_dedup` and `near_<setting>`)."""
    g = parser.add_argument_group("near dedup (MinHash-LSH; docs/near_dedup.md)")
    g.add_argument(
        "--near-dedup",
        dest="near_dedup",
        action=BoolFlag,
        default=True,
        help="remove near duplicates with MinHash-LSH",
    )
    add_renamed(
        g,
        "--near-threshold",
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help="Jaccard similarity of character shingles that makes a near duplicate",
    )
    add_renamed(
        g,
        "--near-num-perm",
        "--num-perm",
        type=int,
        default=DEFAULT_NUM_PERM,
        help="MinHash permutations (hash values per signature)",
    )
    add_renamed(
        g,
        "--near-shingle-size",
        "--shingle-size",
        type=int,
        default=DEFAULT_SHINGLE_SIZE,
        help="characters per shingle of the dedup key",
    )
    add_renamed(
        g,
        "--near-bands",
        "--bands",
        type=int,
        default=None,
        help="LSH bands (with --near-rows; default: datasketch's optimum for the threshold)",
    )
    add_renamed(g, "--near-rows", "--rows", type=int, default=None, help="LSH rows per band")
    add_renamed(
        g,
        "--near-lsh-fn-weight",
        "--lsh-fn-weight",
        type=float,
        default=DEFAULT_FN_WEIGHT,
        help="weight of false negatives (false positives: 1 minus it) in the bands x "
        "rows rule; verification removes false positives, so missing pairs cost "
        "more",
    )
    add_renamed(
        g,
        "--near-minhash-scheme",
        "--minhash-scheme",
        choices=SCHEMES,
        default=DEFAULT_SCHEME,
        help="datasketch permutation scheme (affine32: datasketch 2.x default)",
    )
    add_renamed(
        g,
        "--near-minhash-seed",
        "--minhash-seed",
        type=int,
        default=DEFAULT_SEED,
        help="seed of the permutation parameters (datasketch's `seed`)",
    )
    _add_verify_and_keep_args(g)


def _add_verify_and_keep_args(g) -> None:
    """The flags of verification, keeping and connected components."""
    add_renamed(
        g,
        "--near-verify",
        "--verify",
        choices=VERIFY_MODES,
        default="exact",
        help="drop candidate pairs below the threshold by signature estimate, by exact "
        "shingle Jaccard, or not at all",
    )
    add_renamed(
        g,
        "--near-triage-sigmas",
        "--triage-sigmas",
        type=float,
        default=DEFAULT_TRIAGE_SIGMAS,
        help="with --near-verify exact, a pair whose signature estimate lies this many "
        "standard errors above or below the threshold is decided by the estimate, "
        "without reading the documents; 0 verifies every pair exactly",
    )
    add_renamed(
        g,
        "--near-keep",
        "--keep",
        choices=KEEP_POLICIES,
        default="smallest",
        help="which document of a near-duplicate cluster survives",
    )
    g.add_argument(
        "--near-keep-rule",
        dest="near_keep_rule",
        choices=KEEP_RULES,
        default="twin",
        help="twin: remove a document only where a kept one has a verified edge to "
        "it (its twin); components: keep one document per connected "
        "component, removing the most (docs/near_dedup.md)",
    )
    g.add_argument(
        "--near-max-component-edges",
        dest="near_max_component_edges",
        type=int,
        default=DEFAULT_MAX_COMPONENT_EDGES,
        help="a component with more verified edges than this is kept by the "
        "components rule, so one worker never holds more",
    )
    add_renamed(
        g,
        "--near-cc-rounds",
        "--cc-rounds",
        type=int,
        default=DEFAULT_CC_ROUNDS,
        help="large-star/small-star rounds before the residual finish",
    )
    add_renamed(
        g,
        "--near-max-bucket-size",
        "--max-bucket-size",
        type=int,
        default=DEFAULT_MAX_BUCKET,
        help="the edges of an LSH bucket larger than this are verified where its members "
        "are, against its center from a side input, not gathered at the center",
    )
    g.add_argument(
        "--near-bucket-shards",
        dest="near_bucket_shards",
        type=int,
        default=DEFAULT_BUCKET_SHARDS,
        help="shards of the LSH buckets; one worker holds one shard's band entries "
        "(16 x documents / shards): raise it above 100 M documents. The output does not "
        "depend on it",
    )
