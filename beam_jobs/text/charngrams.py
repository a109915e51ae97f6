"""Character n-grams of a code-point array as uint64 hashes, and how often each occurs.

The n-gram hash is a polynomial over uint64 built from the (n-1)-gram hashes in one numpy
step, so all sizes up to n cost n vector passes. Wrap-around is fine: a collision can only
merge two distinct n-grams, with probability about (positions^2) / 2^64.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

_BASE = np.uint64(0x100000001B3)


def rolling_hashes(codes: np.ndarray, max_n: int) -> Iterator[tuple[int, np.ndarray]]:
    """(n, hash of the n-gram at every position) for n = 1..max_n while the text is long
    enough to hold one n-gram."""
    x = codes.astype(np.uint64)
    h = x
    for n in range(1, max_n + 1):
        if len(codes) < n:
            return
        if n > 1:
            with np.errstate(over="ignore"):
                h = h[:-1] * _BASE + x[n - 1 :]
        yield n, h


def ngram_hashes(codes: np.ndarray, n: int) -> np.ndarray:
    """The hashes of the n-grams of `codes` (empty when it is shorter than n)."""
    last = np.zeros(0, dtype=np.uint64)
    for size, h in rolling_hashes(codes, n):
        if size == n:
            last = h
    return last


def occurrence_counts(hashes: np.ndarray) -> np.ndarray:
    """How often each distinct value occurs (in sorted-value order): one sort, no np.unique."""
    if not len(hashes):
        return np.zeros(0, dtype=np.int64)
    s = np.sort(hashes)
    starts = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1])))
    return np.diff(np.append(starts, len(s)))
