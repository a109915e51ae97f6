"""LSH banding and the graph pieces of near-dedup, as pure functions. No Beam here.

- `optimal_params`: bands x rows from a Jaccard threshold, datasketch's rule (minimize the equally
  weighted integrals of false-positive and false-negative probability).
- `band_shards` / `bucket_stars`: the buckets of a batch of signatures, vectorized: which
  shard holds each band's bucket, and each bucket as a star on its best-ranked member.
- `large_star` / `small_star`: one node's step of the alternating connected-components algorithm
  of Kiveris et al., "Connected Components in MapReduce and Beyond" (SoCC 2014); the Beam
  rounds in `beam_jobs.dedup.near` call these per grouped node.
- `UnionFind` / `components`: the in-memory oracle (tests, benchmarks, the residual step).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np

from beam_jobs.dedup.shingles import FMIX64_C1, FMIX64_C2, FNV_OFFSET, FNV_PRIME


def _integrals(threshold: float, num_perm: int) -> tuple[np.ndarray, np.ndarray, list]:
    """False-positive and false-negative areas of every (bands, rows) with bands * rows <=
    num_perm. The collision probability 1 - (1 - s^r)^b is a polynomial of degree b*r <=
    num_perm, so Gauss-Legendre with num_perm/2 + 1 nodes integrates it exactly: the same
    areas as datasketch's scipy.quad, for all pairs in one vectorized pass (0.01 s, not 0.8)."""
    nodes, weights = np.polynomial.legendre.leggauss(num_perm // 2 + 1)
    pairs = [(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)]
    b = np.array([p[0] for p in pairs], dtype=np.float64)[:, None]
    r = np.array([p[1] for p in pairs], dtype=np.float64)[:, None]

    def area(lo: float, hi: float, fn) -> np.ndarray:
        s = (hi - lo) / 2 * nodes[None, :] + (hi + lo) / 2
        return (hi - lo) / 2 * (fn(s) @ weights)

    collide = lambda s: 1 - (1 - s**r) ** b  # noqa: E731
    return area(0.0, threshold, collide), area(threshold, 1.0, lambda s: 1 - collide(s)), pairs


@functools.lru_cache(maxsize=64)
def optimal_params(
    threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5
) -> tuple[int, int]:
    """(bands, rows) with bands * rows <= num_perm minimizing the weighted error, as datasketch."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    fp, fn, pairs = _integrals(threshold, num_perm)
    return pairs[int(np.argmin(fp * fp_weight + fn * fn_weight))]


def band_values(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, num_perm) uint32 signatures → (n, bands, rows): each band's values, a view."""
    return sigs[:, : bands * rows].reshape(len(sigs), bands, rows)


def band_shards(values: np.ndarray, shards: int) -> np.ndarray:
    """(n, bands, rows) band values → (n, bands) int32: the shard of each band's bucket, from a
    64-bit mix of the band number and its rows (FNV-1a, then the MurmurHash3 finalizer), so
    that a bucket lies whole in one shard, on any machine."""
    n, bands, rows = values.shape
    h = np.empty((n, bands), dtype=np.uint64)
    h[:] = (np.uint64(FNV_OFFSET) ^ np.arange(bands, dtype=np.uint64)) * np.uint64(FNV_PRIME)
    for r in range(rows):
        h ^= values[:, :, r]
        h *= np.uint64(FNV_PRIME)
    h ^= h >> np.uint64(33)
    h *= np.uint64(FMIX64_C1)
    h ^= h >> np.uint64(33)
    h *= np.uint64(FMIX64_C2)
    h ^= h >> np.uint64(33)
    return (h % np.uint64(shards)).astype(np.int32)


def bucket_stars(
    band: np.ndarray, values: np.ndarray, rank: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Band entries (band number, its (m, rows) values, the rank of the entry's document,
    unique per band) → (sizes, members, centers, member_bucket_sizes): the size of every
    bucket (same band number and values), and each bucket as a star: every entry but the
    best-ranked one (`members`) paired with that one (`centers`), as entry indices, with the
    size of the bucket they share. Never all pairs; a giant bucket is a run like any other."""
    m = len(band)
    if not m:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, empty
    keys = (rank, *(values[:, r] for r in reversed(range(values.shape[1]))), band)
    order = np.lexsort(keys)  # by bucket, then rank: each bucket's first entry is its best
    v, b = values[order], band[order]
    new = np.ones(m, dtype=bool)
    new[1:] = (b[1:] != b[:-1]) | (v[1:] != v[:-1]).any(axis=1)
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, m))
    bucket = np.cumsum(new) - 1
    member = ~new
    return sizes, order[member], order[starts][bucket][member], sizes[bucket][member]


def large_star(node: str, neighbors: Iterable[str]) -> list[tuple[str, str]]:
    """Connect every larger neighbor of `node` to the smallest of node and its neighbors.

    Two passes over `neighbors` (a re-iterable Beam group), so a high-degree node is streamed,
    not copied. Returns (neighbor, new_parent) edges; the neighbor == parent case is dropped.
    """
    m = min(min(neighbors, default=node), node)
    seen = set()
    out = []
    for v in neighbors:
        if v > node and v not in seen:
            seen.add(v)
            out.append((v, m))
    return out


def small_star(node: str, smaller: Iterable[str]) -> list[tuple[str, str]]:
    """Connect node and all its smaller neighbors to the smallest of them.

    `smaller` are the neighbors below `node`. Returns (member, parent) edges, members != parent.
    """
    m = min(min(smaller, default=node), node)
    out = [] if node == m else [(node, m)]
    seen = {m, node}
    for v in smaller:
        if v not in seen:
            seen.add(v)
            out.append((v, m))
    return out


class UnionFind:
    """Union-find whose root is always the smallest member (path halving, union by min)."""

    def __init__(self):
        self.parent: dict = {}

    def find(self, x):
        parent = self.parent
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if rb < ra:
                ra, rb = rb, ra
            self.parent[rb] = ra


def components(edges: Iterable[tuple], nodes: Iterable = ()) -> dict:
    """node -> smallest node of its component, for every node named in edges or nodes."""
    uf = UnionFind()
    for n in nodes:
        uf.find(n)
    for a, b in edges:
        uf.union(a, b)
    return {n: uf.find(n) for n in list(uf.parent)}
