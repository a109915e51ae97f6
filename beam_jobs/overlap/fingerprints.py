"""Fingerprints of long windows of the dedup key, and what they estimate (pure, no Beam).

A window is `width` consecutive characters of the dedup key (or `width` consecutive words, for
space-separated languages). Each window gets a 64-bit hash: a polynomial of its code points
modulo 2**64 from prefix sums (every window in a few numpy passes, not a loop over windows),
then the splitmix64 finalizer so that the low bits are uniform. A fingerprint is a window
whose hash is 0 modulo `mod` (the "hash mod p" selection of Broder/Manber): the choice
depends only on the window's content, so two documents select the same fingerprints from the
text they share, and |F(A) ∩ F(B)| / |F(A)| is an unbiased estimate of the containment
|A ∩ B| / |A| of A's windows in B (a hash sample of the distinct windows). `mod` 1 keeps every
window: the exact sets.
"""

from __future__ import annotations

import hashlib

import numpy as np

from beam_jobs.text.normalize import dedup_key

_BASE = np.uint64(0x100000001B3)  # odd, so it has an inverse modulo 2**64
_BASE_INV = np.uint64(pow(int(_BASE), -1, 1 << 64))
_EMPTY = np.zeros(0, dtype=np.uint64)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, elementwise (uint64 arithmetic wraps modulo 2**64)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _powers(base: np.uint64, n: int) -> np.ndarray:
    out = np.full(n, base, dtype=np.uint64)
    out[0] = 1
    return np.cumprod(out, dtype=np.uint64)


def symbol_window_hashes(symbols: np.ndarray, width: int) -> np.ndarray:
    """Hash of every window of `width` consecutive symbols (uint64 values), in order."""
    n = len(symbols) - width + 1
    if n <= 0:
        return _EMPTY
    symbols = symbols.astype(np.uint64) + np.uint64(1)  # symbol 0 must still count
    weighted = symbols * _powers(_BASE, len(symbols))
    prefix = np.concatenate(([np.uint64(0)], np.cumsum(weighted, dtype=np.uint64)))
    # prefix[i+w] - prefix[i] = BASE**i * sum_j s[i+j] BASE**j: undo BASE**i
    windows = (prefix[width:] - prefix[:n]) * _powers(_BASE_INV, n)
    return _mix(windows ^ np.uint64(width))


def char_symbols(key: str) -> np.ndarray:
    return np.frombuffer(key.encode("utf-32-le"), dtype=np.uint32)


def word_symbols(key: str) -> np.ndarray:
    """One 64-bit hash per space-separated word (the dedup key folds all whitespace)."""
    words = key.split()
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
            for w in words
        ],
        dtype=np.uint64,
    )


def window_hashes(key: str, width: int, words: bool = False) -> np.ndarray:
    """Hashes of every window of a dedup key: `width` characters, or `width` words."""
    symbols = word_symbols(key) if words else char_symbols(key)
    return symbol_window_hashes(symbols, width)


def distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sort and compare neighbours: numpy 2.4's `np.unique` of uint64
    was 70x slower on 2 M values)."""
    values = np.sort(values)
    if len(values) < 2:
        return values
    return values[np.concatenate(([True], values[1:] != values[:-1]))]


def select(hashes: np.ndarray, mod: int) -> np.ndarray:
    """The distinct fingerprints among window hashes: those that are 0 modulo `mod`, sorted."""
    if mod > 1:
        hashes = hashes[hashes % np.uint64(mod) == 0]
    return distinct(hashes)


def fingerprints(text: str, width: int, mod: int, words: bool = False) -> np.ndarray:
    """A cleaned document's fingerprints: sorted distinct selected hashes of its dedup key's
    windows (the key's normalization, so width, case and punctuation do not matter)."""
    return select(window_hashes(dedup_key(text), width, words), mod)


def containment(shared: int, size: int) -> float:
    """Estimated |A ∩ B| / |A| from A's fingerprint count and the count it shares with B."""
    return shared / size if size else 0.0


def contained_either_way(shared: int, size_a: int, size_b: int, threshold: float) -> bool:
    """Whether A is contained in B or B in A by at least `threshold` (estimated)."""
    return max(containment(shared, size_a), containment(shared, size_b)) >= threshold


def to_bytes(prints: np.ndarray) -> bytes:
    return prints.astype("<u8").tobytes()


def from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<u8").astype(np.uint64)


def as_keys(data: bytes) -> list[int]:
    """Fingerprints as signed 64-bit Python ints: shuffle keys Beam's VarIntCoder encodes."""
    return np.frombuffer(data, dtype="<i8").tolist()
