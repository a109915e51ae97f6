"""Pruning and the Kneser-Ney statistics taken before it, against a brute force over a
Counter of the unpruned n-grams."""

from collections import Counter, defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beam_jobs.counts.counting import TokenCodes, count_sequences, ngrams_of, split_by_shard
from beam_jobs.counts.pruning import (
    finalize_shard,
    merge_stats,
    parse_min_counts,
    thresholds,
)

CODES = TokenCodes("char")
BOS = "<bos>"


def rows(grams, values):
    return {tuple(CODES.token(c) for c in g): v for g, v in zip(grams.tolist(), values.tolist())}


def shard_results(texts, order, num_shards, min_counts):
    tables = count_sequences(CODES.sequences(texts), order)
    per_shard = defaultdict(lambda: [None] * order)
    for n, t in enumerate(tables, 1):
        for shard, part in split_by_shard(t, num_shards):
            per_shard[shard][n - 1] = part
    return [finalize_shard(per_shard[s], min_counts, CODES.bos) for s in range(num_shards)]


def brute_force(texts, order, min_counts):
    counts = Counter()
    for text in texts:
        counts.update(ngrams_of(list(text), order))
    kept = {g: c for g, c in counts.items() if c >= min_counts[len(g) - 1]}
    cont = Counter(g[1:] for g in counts if len(g) >= 2)  # distinct left extensions
    want_cont = {g: cont[g] for g in kept if len(g) < order and g[0] != BOS and cont[g]}
    pruned = Counter()
    for g in counts:
        if 3 <= len(g) + 1 <= order + 1 and len(g) >= 2 and g[0] != BOS and g not in kept:
            pruned[g[:-1]] += cont[g]
    hist = {}
    for n in range(1, order + 1):
        raw = [c for g, c in counts.items() if len(g) == n]
        adj = [
            cont[g] if g[0] != BOS else c
            for g, c in counts.items()
            if len(g) == n and g != (BOS,) and (g[0] == BOS or cont[g])
        ]
        hist[n] = (
            [sum(1 for c in raw if c == k) for k in range(1, 5)],
            [sum(1 for c in adj if c == k) for k in range(1, 5)] if n < order else None,
        )
    return kept, want_cont, {g: m for g, m in pruned.items() if m}, hist


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(alphabet="abcあ", max_size=25), max_size=6),
    st.integers(min_value=2, max_value=6),
    st.integers(min_value=1, max_value=4),
    st.sampled_from(["1", "2", "1,2", "1,1,3", "1,2,2,4"]),
)
def test_finalize_equals_brute_force(texts, order, num_shards, spec):
    min_counts = thresholds(parse_min_counts(spec), order)
    results = shard_results(texts, order, num_shards, min_counts)
    kept, cont, pruned, hist = brute_force(texts, order, min_counts)
    got_kept, got_cont, got_pruned = {}, Counter(), Counter()
    for r in results:
        for t in r.raw:
            got_kept.update(rows(t.grams, t.counts))
        for t, mass in zip(r.continuation, r.pruned_mass):
            if t is not None:
                got_cont.update(rows(t.grams, t.counts))
                got_pruned.update(rows(t.grams, mass))
    assert got_kept == kept
    assert {g: c for g, c in got_cont.items() if c} == cont
    assert {g: m for g, m in got_pruned.items() if m} == pruned
    # a continuation row is never for a pruned n-gram, except as a context of pruned mass
    assert all(g in kept for g, c in got_cont.items() if c)
    stats = merge_stats([r.stats for r in results])
    for n in range(1, order + 1):
        s = stats[n - 1]
        assert s.distinct == sum(1 for g in ngram_set(texts, order) if len(g) == n)
        assert s.kept == sum(1 for g in kept if len(g) == n)
        assert s.raw_hist.tolist() == hist[n][0]
        if n < order:
            assert s.adjusted_hist.tolist() == hist[n][1]


def ngram_set(texts, order):
    out = set()
    for text in texts:
        out.update(ngrams_of(list(text), order))
    return out


def test_kept_set_is_closed_under_prefix_and_suffix():
    texts = ["abcabcabd", "bcabx", "abcab"]
    results = shard_results(texts, 5, 3, thresholds((1, 1, 2), 5))
    kept = {}
    for r in results:
        for t in r.raw:
            kept.update(rows(t.grams, t.counts))
    for g in kept:
        if len(g) > 1:
            assert g[:-1] in kept and g[1:] in kept


@pytest.mark.parametrize(
    "spec, msg",
    [
        ("0", "at least 1"),
        ("1,3,2", "must not decrease"),
        ("2,2", "unigrams are never pruned"),
        ("x", "integers"),
    ],
)
def test_bad_min_counts_are_refused(spec, msg):
    with pytest.raises(ValueError, match=msg):
        parse_min_counts(spec)


def test_thresholds_expand():
    assert thresholds((2,), 5) == [1, 1, 2, 2, 2]
    assert thresholds((1, 2), 4) == [1, 2, 2, 2]
    assert thresholds((1,), 2) == [1, 1]
    assert thresholds((1, 1, 2), 2) == [1, 1]
    assert np.array_equal(thresholds((1, 1, 2, 3), 6), [1, 1, 2, 3, 3, 3])
