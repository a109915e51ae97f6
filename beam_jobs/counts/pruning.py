"""Count pruning and the Kneser-Ney statistics that must be taken before it (pure).

Pruning (`--ngram-min-count`, one threshold per order as KenLM's `--prune`, the last one
repeated for the higher orders, non-decreasing, order 1 never pruned): an n-gram of order n is
dropped from the tables when its raw count is below the threshold M_n. Raw counts shrink as an
n-gram grows (c(w1..wn) <= c(w1..wn-1) and <= c(w2..wn)), so with non-decreasing thresholds the
kept n-grams are closed under prefixes and suffixes: every kept n-gram's context and suffix
are kept too, and the tables stay a tree.

What Kneser-Ney needs of the dropped n-grams is taken on the unpruned counts of each shard,
before anything is dropped:
* continuation counts N1+(. g), the number of distinct left extensions x.g, for every kept
  n-gram g of order n < N. The n-grams are sharded by their last n-1 tokens, so all the x.g of
  one g meet on the shard of g's own key (`counting.shard_keys`), where N1+(. g) is complete,
  and so is c(g) = sum_x c(x.g) (g does not start with `<bos>`, so every occurrence of g has a
  left neighbour), which decides whether g is kept;
* the continuation mass of pruned n-grams per kept context: pruned(ctx) = sum of N1+(. ctx w)
  over the pruned ctx.w, which goes to ctx's backoff weight so that the distribution still
  sums to one (the highest order needs no such row: its denominator is c(ctx), in the tables);
* counts of counts (how many n-grams have count 1, 2, 3, 4), raw and adjusted (continuation
  counts, or raw counts for n-grams that start with `<bos>`), for the discounts.
Continuation rows go to `ngrams/_continuation/` (a leading `_` keeps them out of a reader of
`ngrams/` as one table); the counts of counts to `ngrams/_pruning.json`. `lm.ngram` reads both.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from beam_jobs.counts.counting import Table, empty_table, hash_rows

HIST = 4  # counts of counts 1..4 (Chen & Goodman's three discounts need n1..n4)


def parse_min_counts(value: str) -> tuple[int, ...]:
    """'1,1,2' → (1, 1, 2); ValueError (one line) unless non-decreasing, >= 1, starting at 1."""
    try:
        counts = tuple(int(v) for v in str(value).split(","))
    except ValueError:
        raise ValueError(f"--ngram-min-count {value!r}: give integers, e.g. 2 or 1,1,2") from None
    if any(c < 1 for c in counts):
        raise ValueError(f"--ngram-min-count {value!r}: thresholds must be at least 1")
    if any(b < a for a, b in zip(counts, counts[1:])):
        raise ValueError(
            f"--ngram-min-count {value!r}: thresholds must not decrease with "
            "the order (a kept n-gram's prefix must be kept)"
        )
    if len(counts) > 1 and counts[0] != 1:
        raise ValueError(
            f"--ngram-min-count {value!r}: unigrams are never pruned (the "
            "vocabulary has its own --min-count)"
        )
    return counts


def thresholds(min_counts: tuple[int, ...], order: int) -> list[int]:
    """M_1..M_order: the given values, the last one repeated; a single value M means
    1,1,M,M,... (unigrams and bigrams kept, as KenLM's usual `--prune 0 0 1`)."""
    if len(min_counts) == 1:
        min_counts = (1, 1, min_counts[0])
    out = list(min_counts[:order])
    return out + [out[-1]] * (order - len(out))


def prunes(min_counts: tuple[int, ...], order: int) -> bool:
    return any(m > 1 for m in thresholds(min_counts, order))


def histogram(counts: np.ndarray) -> np.ndarray:
    """[#count==1, ..., #count==HIST]."""
    return np.bincount(np.clip(counts, 0, HIST + 1), minlength=HIST + 2)[1 : HIST + 1].astype(
        np.int64
    )


class OrderStats(NamedTuple):
    distinct: int
    kept: int
    raw_hist: np.ndarray  # counts of raw counts (all n-grams of the order)
    adjusted_hist: np.ndarray  # counts of adjusted counts (continuation, or raw after <bos>)


class ShardResult(NamedTuple):
    raw: list[Table]  # per order: the kept rows with raw counts
    continuation: list[Table | None]  # per order < N: counts = N1+(. g), extra = pruned mass
    pruned_mass: list[np.ndarray | None]  # aligned with `continuation`
    stats: list[OrderStats]


def _groups(keys: np.ndarray, grams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, starts): rows sorted by (key, codes) and where each group of equal rows
    starts."""
    order = np.lexsort([*grams.T[::-1], keys])
    k, g = keys[order], grams[order]
    new = np.ones(len(k), bool)
    if len(k) > 1:
        new[1:] = (k[1:] != k[:-1]) | (g[1:] != g[:-1]).any(axis=1)
    return order, np.flatnonzero(new)


def group_sum(grams: np.ndarray, *values: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Distinct rows of `grams` and, per values array, its sums over equal rows."""
    if not len(grams):
        return grams, [v[:0].astype(np.int64) for v in values]
    order, starts = _groups(hash_rows(grams), grams)
    return grams[order][starts], [
        np.add.reduceat(v[order].astype(np.int64), starts) for v in values
    ]


def finalize_shard(tables: list[Table | None], min_counts: list[int], bos: int) -> ShardResult:
    """A shard's complete counts (per order; n-grams sharded by `counting.shard_keys`) →
    what it writes: kept raw rows, continuation rows, and the statistics of every order."""
    order = len(tables)
    tables = [t if t is not None else empty_table(n) for n, t in enumerate(tables, 1)]
    raw, adjusted = [], [np.zeros(HIST, np.int64) for _ in range(order)]
    continuation: list[Table | None] = [None] * order
    pruned_mass: list[np.ndarray | None] = [None] * order
    for n, t in enumerate(tables, 1):
        raw.append(t.take(t.counts >= min_counts[n - 1]))
        starts_bos = t.grams[:, 0] == bos
        if n > 1:  # the unigram <bos> is never predicted: its adjusted count is 0
            adjusted[n - 1] += histogram(t.counts[starts_bos])
    pruned_by_ctx: list[list] = [[] for _ in range(order)]
    for n in range(2, order + 1):
        y = tables[n - 1]
        g, (cont, total) = group_sum(y.grams[:, 1:], np.ones(len(y.counts)), y.counts)
        adjusted[n - 2] += histogram(cont)
        keep = total >= min_counts[n - 2]
        continuation[n - 2] = Table(hash_rows(g[keep]), g[keep], cont[keep])
        if n - 1 >= 2 and (~keep).any():
            pruned_by_ctx[n - 3].append((g[~keep][:, :-1], cont[~keep]))
    for m in range(1, order):  # merge each order's continuation and pruned-mass rows
        c = continuation[m - 1]
        if pruned_by_ctx[m - 1]:
            ctx, mass = pruned_by_ctx[m - 1][0]
            grams = np.concatenate([c.grams, ctx])
            g, (cont, pm) = group_sum(
                grams,
                np.concatenate([c.counts, np.zeros(len(ctx))]),
                np.concatenate([np.zeros(len(c.counts)), mass]),
            )
            continuation[m - 1], pruned_mass[m - 1] = Table(hash_rows(g), g, cont), pm
        else:
            pruned_mass[m - 1] = np.zeros(len(c.counts), np.int64)
    stats = [
        OrderStats(len(t.counts), len(r.counts), histogram(t.counts), adjusted[n])
        for n, (t, r) in enumerate(zip(tables, raw))
    ]
    return ShardResult(raw, continuation, pruned_mass, stats)


def merge_stats(parts: list[list[OrderStats]]) -> list[OrderStats]:
    """Sum the statistics of several shards."""
    parts = [p for p in parts if p]
    return (
        [
            OrderStats(
                sum(p[n].distinct for p in parts),
                sum(p[n].kept for p in parts),
                sum(p[n].raw_hist for p in parts),
                sum(p[n].adjusted_hist for p in parts),
            )
            for n in range(len(parts[0]))
        ]
        if parts
        else []
    )


def stats_json(stats: list[OrderStats], min_counts: list[int], continuation: list[str]) -> dict:
    """The body of `ngrams/_pruning.json`."""
    return {
        "format_version": 1,
        "min_counts": list(min_counts),
        "orders": {
            str(n): {
                "distinct": s.distinct,
                "kept": s.kept,
                "raw_counts_of_counts": s.raw_hist.tolist(),
                "adjusted_counts_of_counts": s.adjusted_hist.tolist(),
            }
            for n, s in enumerate(stats, 1)
        },
        "continuation": continuation,
        "counts_of_counts": "[number of n-grams with count 1, 2, 3, 4] before pruning; "
        "adjusted: continuation counts N1+(. g), raw counts for n-grams "
        "that start with <bos> (the unigram <bos> excluded)",
    }
