"""Exact character-shingle Jaccard for the benchmarks: every document's shingle set as sorted
integer ids (no hashing, so no collisions), a compiled merge for one pair, and the closest
document of a reference set (the kept documents) by prefix filtering.

Ids: a shingle is packed losslessly (three 21-bit code points per 64-bit word, the words
renumbered densely), then numbered by increasing document frequency, so that the first ids of
a set are its rarest shingles. Prefix filter (Bayardo et al. 2007): two sets with Jaccard >= f
share an id among the first |s| - ceil(f |s|) + 1 of each; the size filter f|x| <= |y| <= |x|/f
prunes the rest. Every candidate is then compared exactly, so `nearest` is exact for any
reference document at or above the floor f and says "below f" otherwise.
"""

from __future__ import annotations

import math

import numba
import numpy as np

SENTINEL = 0x1FFFFF  # above every code point (<= 0x10FFFF): pads a key shorter than n


def _dense(values: np.ndarray) -> tuple[np.ndarray, int]:
    uniq, inverse = np.unique(values, return_inverse=True)
    return inverse.astype(np.int64), uniq.size


def _windows(key: str, n: int) -> np.ndarray:
    """(shingles, n) code points: every n-gram of the key; a key shorter than n is one padded
    shingle (the pipeline's rule: the whole key)."""
    cps = np.frombuffer(key.encode("utf-32-le"), dtype="<u4").astype(np.uint64)
    if cps.size <= n:
        return np.concatenate([cps, np.full(n - cps.size, SENTINEL, np.uint64)])[None, :]
    return np.lib.stride_tricks.sliding_window_view(cps, n)


class ShingleSets:
    """Shingle sets of `keys` (one per document, order kept) as a CSR: `flat[offsets[i]:
    offsets[i + 1]]` is document i's sorted distinct ids. An empty key has an empty set."""

    def __init__(self, keys: list[str], n: int = 5):
        docs, words = [], [[] for _ in range(math.ceil(n / 3))]
        for i, key in enumerate(keys):
            if not key:
                continue
            w = _windows(key, n)
            docs.append(np.full(w.shape[0], i, np.int64))
            for j in range(len(words)):
                chunk = w[:, 3 * j : 3 * j + 3]
                packed = np.zeros(w.shape[0], np.uint64)
                for c in range(chunk.shape[1]):
                    packed = (packed << np.uint64(21)) | chunk[:, c]
                words[j].append(packed)
        doc = np.concatenate(docs) if docs else np.zeros(0, np.int64)
        gid, _ = _dense(np.concatenate(words[0]) if docs else np.zeros(0, np.uint64))
        for extra in words[1:]:
            rank, size = _dense(np.concatenate(extra))
            gid, _ = _dense(gid * size + rank)
        n_ids = int(gid.max()) + 1 if gid.size else 0
        pairs = np.unique(doc * max(n_ids, 1) + gid)
        pair_doc, pair_gid = pairs // max(n_ids, 1), pairs % max(n_ids, 1)
        df = np.bincount(pair_gid, minlength=n_ids)
        order = np.lexsort((np.arange(n_ids), df))  # rarest first
        rank_of = np.empty(n_ids, np.int64)
        rank_of[order] = np.arange(n_ids)
        flat = np.sort(pair_doc * max(n_ids, 1) + rank_of[pair_gid]) % max(n_ids, 1)
        self.flat = flat.astype(np.int32 if n_ids < 2**31 else np.int64)
        self.offsets = np.searchsorted(pair_doc, np.arange(len(keys) + 1)).astype(np.int64)
        self.sizes = np.diff(self.offsets)

    def __len__(self) -> int:
        return self.sizes.size

    def get(self, i: int) -> np.ndarray:
        return self.flat[self.offsets[i] : self.offsets[i + 1]]

    def jaccard(self, i: int, j: int) -> float:
        return float(_jaccard(self.flat, self.offsets, i, j))

    def pairs_jaccard(self, pairs: np.ndarray) -> np.ndarray:
        """Jaccard of each row (i, j) of an (m, 2) integer array."""
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        return _pairs(self.flat, self.offsets, pairs)


@numba.njit(cache=True)
def _jaccard(flat, offsets, i, j):
    a0, a1, b0, b1 = offsets[i], offsets[i + 1], offsets[j], offsets[j + 1]
    if a1 == a0 and b1 == b0:
        return 1.0
    inter = 0
    while a0 < a1 and b0 < b1:
        x, y = flat[a0], flat[b0]
        if x == y:
            inter += 1
            a0 += 1
            b0 += 1
        elif x < y:
            a0 += 1
        else:
            b0 += 1
    return inter / ((offsets[i + 1] - offsets[i]) + (offsets[j + 1] - offsets[j]) - inter)


@numba.njit(cache=True)
def _pairs(flat, offsets, pairs):
    out = np.empty(pairs.shape[0])
    for k in range(pairs.shape[0]):
        out[k] = _jaccard(flat, offsets, pairs[k, 0], pairs[k, 1])
    return out


@numba.njit(cache=True)
def _best(flat, offsets, x, cands):
    best, arg = -1.0, -1
    for c in cands:
        s = _jaccard(flat, offsets, x, c)
        if s > best or (s == best and c < arg):
            best, arg = s, c
    return best, arg


def _prefix_len(size: int, floor: float) -> int:
    return size - math.ceil(floor * size - 1e-9) + 1


class NearestIndex:
    """The documents `reference` (indices into `sets`) indexed by their prefixes at `floor`;
    `nearest(x)` gives (Jaccard, index) of x's most similar reference document at or above the
    floor (ties: the smaller index), or (None, None) when there is none."""

    def __init__(self, sets: ShingleSets, reference, floor: float = 0.5):
        self.sets, self.floor = sets, floor
        toks, docs = [], []
        for r in np.asarray(reference, dtype=np.int64):
            s = sets.get(int(r))
            if s.size:
                p = s[: _prefix_len(s.size, floor)]
                toks.append(p)
                docs.append(np.full(p.size, r, np.int64))
        tok = np.concatenate(toks) if toks else np.zeros(0, np.int64)
        doc = np.concatenate(docs) if docs else np.zeros(0, np.int64)
        order = np.argsort(tok, kind="stable")
        self.tok, self.doc = tok[order], doc[order]

    def candidates(self, x: int) -> np.ndarray:
        s = self.sets.get(x)
        if not s.size:
            return np.zeros(0, np.int64)
        p = s[: _prefix_len(s.size, self.floor)]
        lo = np.searchsorted(self.tok, p, "left")
        hi = np.searchsorted(self.tok, p, "right")
        if not (hi > lo).any():
            return np.zeros(0, np.int64)
        spans = [self.doc[a:b] for a, b in zip(lo, hi) if b > a]
        cands = np.unique(np.concatenate(spans))
        sizes = self.sets.sizes[cands]
        keep = (sizes >= self.floor * s.size - 1e-9) & (sizes * self.floor <= s.size + 1e-9)
        return cands[keep & (cands != x)]

    def nearest(self, x: int) -> tuple[float | None, int | None]:
        cands = self.candidates(x)
        if not cands.size:
            return None, None
        best, arg = _best(self.sets.flat, self.sets.offsets, x, cands)
        if best < self.floor:
            return None, None
        return float(best), int(arg)
