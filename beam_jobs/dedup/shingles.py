"""Character shingles of a dedup key, as strings (reference) and as 32-bit hashes (fast path).

A shingle is `n` consecutive code points of the key. A non-empty key shorter than `n` is one
shingle, the whole key, so short documents keep distinct signatures instead of all colliding on
the empty one. Only the empty key has no shingles.

`shingle_hash32` is the pure-Python twin of the hash the numba kernels in `beam_jobs.dedup.minhash`
compute inline; pass it as `hashfunc=` to `datasketch.MinHash` to get identical hash values.
"""

from __future__ import annotations

DEFAULT_SHINGLE_SIZE = 5

_M64 = (1 << 64) - 1
# FNV-1a style mixing over code points, then the MurmurHash3 64-bit finalizer.
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
FMIX64_C1 = 0xFF51AFD7ED558CCD
FMIX64_C2 = 0xC4CEB9FE1A85EC53


def shingles(key: str, n: int) -> list[str]:
    """All character n-grams of `key` in order (with repeats); the whole key if shorter than n."""
    if n < 1:
        raise ValueError(f"shingle size must be >= 1, got {n}")
    if not key:
        return []
    if len(key) <= n:
        return [key]
    return [key[i : i + n] for i in range(len(key) - n + 1)]


def shingle_set(key: str, n: int) -> set[str]:
    """The set of distinct shingles: what Jaccard similarity is defined on."""
    return set(shingles(key, n))


def jaccard(a: set, b: set) -> float:
    """Exact Jaccard similarity of two sets (1.0 for two empty sets)."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def shingle_hash32(shingle: str | bytes) -> int:
    """32-bit hash of one shingle; bytes are decoded as UTF-8 (datasketch's habit)."""
    if isinstance(shingle, (bytes, bytearray)):
        shingle = shingle.decode("utf-8")
    h = FNV_OFFSET
    for ch in shingle:
        h = ((h ^ ord(ch)) * FNV_PRIME) & _M64
    h ^= h >> 33
    h = (h * FMIX64_C1) & _M64
    h ^= h >> 33
    h = (h * FMIX64_C2) & _M64
    h ^= h >> 33
    return h & 0xFFFFFFFF
