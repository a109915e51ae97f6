"""Banding parameters, bucket shards and stars, the star steps of connected components."""

import random

import numpy as np
import pytest
from datasketch.lsh import _optimal_param
from hypothesis import given, settings
from hypothesis import strategies as st

from beam_jobs.dedup import lsh


@pytest.mark.parametrize("threshold,num_perm", [(0.8, 128), (0.5, 128), (0.9, 64), (0.7, 256)])
def test_optimal_params_equal_datasketch(threshold, num_perm):
    assert lsh.optimal_params(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5)


def test_optimal_params_rejects_bad_threshold():
    with pytest.raises(ValueError):
        lsh.optimal_params(1.0, 128)


def test_band_shards_put_equal_bands_together_and_are_fixed():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2**32, (1, 128), dtype=np.uint32)
    b = a.copy()
    b[0, 20] += 1  # band 1 of 9 x 13
    sa = lsh.band_shards(lsh.band_values(a, 9, 13), 1 << 20)
    sb = lsh.band_shards(lsh.band_values(b, 9, 13), 1 << 20)
    assert sa.shape == (1, 9) and [x == y for x, y in zip(sa[0], sb[0])] == [
        i != 1 for i in range(9)
    ]
    # the same rows in two bands are two buckets, usually in two shards
    same = np.zeros((1, 2, 8), dtype=np.uint32)
    assert len(set(lsh.band_shards(same, 1 << 20)[0].tolist())) == 2
    # a pure function of the values: the same shards on every machine
    assert lsh.band_shards(np.arange(16, dtype=np.uint32).reshape(1, 2, 8), 1000).tolist() == [
        [62, 734]
    ]


@given(st.integers(0, 2**32 - 1), st.integers(1, 60), st.integers(1, 4))
@settings(max_examples=60, deadline=None)
def test_bucket_stars_equal_grouping_by_band_value(seed, n, alphabet):
    rng = np.random.default_rng(seed)
    bands, rows = 3, 2
    values = rng.integers(0, alphabet, (n, bands, rows), dtype=np.uint32)
    rank = rng.permutation(n)  # document d's rank
    doc, band = np.repeat(np.arange(n), bands), np.tile(np.arange(bands), n)
    flat = values.reshape(n * bands, rows)
    sizes, members, centers, shared = lsh.bucket_stars(band, flat, rank[doc])
    buckets = {}
    for e in range(n * bands):
        buckets.setdefault((int(band[e]), *flat[e].tolist()), []).append(int(doc[e]))
    assert sorted(sizes.tolist()) == sorted(len(m) for m in buckets.values())
    expected = []  # a pair sharing k bands is an edge of k buckets
    for docs in buckets.values():
        best = min(docs, key=lambda d: rank[d])
        expected += [(d, best, len(docs)) for d in docs if d != best]
    got = zip(doc[members].tolist(), doc[centers].tolist(), shared.tolist())
    assert sorted(got) == sorted(expected)


def test_bucket_stars_of_nothing():
    empty = np.zeros(0, dtype=np.int64)
    out = lsh.bucket_stars(empty, np.zeros((0, 8), dtype=np.uint32), empty)
    assert [len(x) for x in out] == [0, 0, 0, 0]


def alternate_until_converged(edges, max_rounds=100):
    """Pure-Python rounds of large-star then small-star, as the Beam transform runs them."""
    for rounds in range(1, max_rounds + 1):
        nbrs = {}
        for a, b in edges:
            nbrs.setdefault(a, []).append(b)
            nbrs.setdefault(b, []).append(a)
        large = [e for u, vs in nbrs.items() for e in lsh.large_star(u, vs)]
        smaller = {}
        for a, b in large:
            hi, lo = max(a, b), min(a, b)
            smaller.setdefault(hi, []).append(lo)
        new = {e for u, vs in smaller.items() for e in lsh.small_star(u, vs)}
        if new == set(edges):
            return new, rounds
        edges = new
    raise AssertionError("did not converge")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), max_size=80))
def test_star_rounds_give_union_find_components(pairs):
    edges = {(a, b) for a, b in pairs if a != b}
    stars, _ = alternate_until_converged(edges)
    oracle = lsh.components(edges)
    got = lsh.components(stars)
    assert got == {n: r for n, r in oracle.items() if n in got}
    assert set(got) == {n for e in edges for n in e}
    # converged: every edge is (leaf, root) with the root the smallest of its component
    assert all(oracle[a] == min(a, b) or oracle[b] == min(a, b) for a, b in stars)


def test_long_path_converges_in_few_rounds():
    nodes = list(range(1000))
    random.Random(0).shuffle(nodes)
    edges = set(zip(nodes, nodes[1:]))
    _, rounds = alternate_until_converged(edges)
    assert rounds <= 12


def test_union_find_root_is_smallest():
    assert lsh.components([("b", "c"), ("c", "a"), ("x", "y")]) == {
        "a": "a",
        "b": "a",
        "c": "a",
        "x": "x",
        "y": "x",
    }


def test_optimal_params_choose_as_datasketch_does():
    from datasketch.lsh import _optimal_param

    for num_perm in (16, 64, 128, 256):
        for threshold in (0.3, 0.5, 0.7, 0.8, 0.9, 0.95):
            for weights in ((0.5, 0.5), (0.05, 0.95)):
                assert lsh.optimal_params(threshold, num_perm, *weights) == _optimal_param(
                    threshold, num_perm, *weights
                )
