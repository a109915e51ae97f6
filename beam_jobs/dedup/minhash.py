"""MinHash signatures of character shingles with compiled (numba) kernels. No Beam here.

Schemes, both with datasketch's seeded permutation parameters (`numpy.random.RandomState(seed)`),
so a signature equals `datasketch.MinHash(num_perm, seed, scheme=..., hashfunc=shingle_hash32)`
fed with `beam_jobs.dedup.shingles.shingles(key, n)`, value for value:

- ``affine32`` (default, datasketch 2.0's default): the 32-bit shingle hash is pre-mixed with the
  MurmurHash3 32-bit finalizer, then permuted by ``a*h + b mod 2**32`` (``a`` odd). All 32-bit
  lane arithmetic, which the compiler vectorizes: this is what makes the 20x.
- ``legacy`` (datasketch < 2.0): ``(a*h + b) mod (2**61 - 1)`` truncated to 32 bits; the modulo
  is done with the Mersenne identity instead of a division.

The kernels hash the shingles themselves from the key's code points (`shingles.shingle_hash32`
is their pure-Python twin) so no Python object is created per shingle. They are module-level
`njit(cache=True)` functions: a Beam worker that unpickles a DoFn imports this module and gets
them from the on-disk cache (or compiles once per process); nothing jitted is pickled.
"""

from __future__ import annotations

import numba
import numpy as np

from beam_jobs.dedup.shingles import (
    FMIX64_C1,
    FMIX64_C2,
    FNV_OFFSET,
    FNV_PRIME,
    shingle_hash32,
)
from beam_jobs.text.codepoints import code_points

SCHEMES = ("affine32", "legacy")
DEFAULT_SCHEME = "affine32"
DEFAULT_SEED = 1
DEFAULT_NUM_PERM = 128

MAX_HASH = np.uint32(0xFFFFFFFF)
_MERSENNE = (1 << 61) - 1

_U64 = np.uint64
_U32 = np.uint32


def permutations(
    num_perm: int, seed: int, scheme: str = DEFAULT_SCHEME
) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) permutation parameters datasketch draws for this scheme and seed."""
    if num_perm < 1:
        raise ValueError(f"num_perm must be >= 1, got {num_perm}")
    gen = np.random.RandomState(seed)
    if scheme == "legacy":
        ab = np.array(
            [
                (
                    gen.randint(1, _MERSENNE, dtype=np.uint64),
                    gen.randint(0, _MERSENNE, dtype=np.uint64),
                )
                for _ in range(num_perm)
            ],
            dtype=np.uint64,
        ).T
        return np.ascontiguousarray(ab[0]), np.ascontiguousarray(ab[1])
    if scheme == "affine32":
        a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
        b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
        return a, b
    raise ValueError(f"unknown MinHash scheme {scheme!r}; known: {', '.join(SCHEMES)}")


@numba.njit(cache=True, nogil=True, inline="always")
def _shingle_hash(cps, start, n):
    h = _U64(FNV_OFFSET)
    for j in range(start, start + n):
        h = (h ^ _U64(cps[j])) * _U64(FNV_PRIME)
    h ^= h >> _U64(33)
    h *= _U64(FMIX64_C1)
    h ^= h >> _U64(33)
    h *= _U64(FMIX64_C2)
    h ^= h >> _U64(33)
    return _U32(h & _U64(0xFFFFFFFF))


@numba.njit(cache=True, nogil=True)
def _hash_shingles(cps, n):
    """32-bit hashes of every shingle of the code points, in order; the whole key if shorter."""
    length = cps.shape[0]
    if length == 0:
        return np.empty(0, dtype=np.uint32)
    if length <= n:
        out = np.empty(1, dtype=np.uint32)
        out[0] = _shingle_hash(cps, 0, length)
        return out
    m = length - n + 1
    out = np.empty(m, dtype=np.uint32)
    for i in range(m):
        out[i] = _shingle_hash(cps, i, n)
    return out


@numba.njit(cache=True, nogil=True)
def _fmix32(hv):
    for i in range(hv.shape[0]):
        h = hv[i]
        h = _U32(h ^ (h >> _U32(16)))
        h = _U32(h * _U32(0x85EBCA6B))
        h = _U32(h ^ (h >> _U32(13)))
        h = _U32(h * _U32(0xC2B2AE35))
        hv[i] = _U32(h ^ (h >> _U32(16)))


@numba.njit(cache=True, nogil=True)
def _sig_affine32(hv, a, b, out):
    # Permutation-major: for each permutation a vectorized min-reduction over all shingle hashes.
    _fmix32(hv)
    m = hv.shape[0]
    for k in range(a.shape[0]):
        ak = a[k]
        bk = b[k]
        best = _U32(0xFFFFFFFF)
        for i in range(m):
            v = _U32(ak * hv[i] + bk)
            best = min(best, v)
        out[k] = best


@numba.njit(cache=True, nogil=True)
def _sig_legacy(hv, a, b, out):
    p = _U64(_MERSENNE)
    m = hv.shape[0]
    for k in range(a.shape[0]):
        ak = a[k]
        bk = b[k]
        best = _U64(0xFFFFFFFF)
        for i in range(m):
            x = ak * _U64(hv[i]) + bk  # wraps mod 2**64, as numpy's uint64 does in datasketch
            x = (x & p) + (x >> _U64(61))  # x mod p, since 2**61 == 1 (mod p)
            if x >= p:
                x -= p
            best = min(best, x & _U64(0xFFFFFFFF))
        out[k] = _U32(best)


@numba.njit(cache=True, nogil=True)
def _signature(cps, n, scheme_id, a, b, out):
    hv = _hash_shingles(cps, n)
    if hv.shape[0] == 0:
        out[:] = _U32(0xFFFFFFFF)
        return 0
    if scheme_id == 0:
        _sig_affine32(hv, a, b, out)
    else:
        _sig_legacy(hv, a, b, out)
    return hv.shape[0]


@numba.njit(cache=True, nogil=True)
def _sorted_intersection_size(a, b):
    # One merge pass over two sorted distinct arrays (np.intersect1d sorts both again).
    i = j = n = 0
    while i < a.size and j < b.size:
        if a[i] == b[j]:
            n += 1
            i += 1
            j += 1
        elif a[i] < b[j]:
            i += 1
        else:
            j += 1
    return n


class MinHasher:
    """Computes signatures for one (num_perm, seed, scheme, shingle size). Cheap to pickle."""

    def __init__(
        self,
        num_perm: int = DEFAULT_NUM_PERM,
        seed: int = DEFAULT_SEED,
        scheme: str = DEFAULT_SCHEME,
        shingle_size: int = 5,
    ):
        if shingle_size < 1:
            raise ValueError(f"shingle size must be >= 1, got {shingle_size}")
        self.num_perm = num_perm
        self.seed = seed
        self.scheme = scheme
        self.shingle_size = shingle_size
        self._a, self._b = permutations(num_perm, seed, scheme)
        self._scheme_id = SCHEMES.index(scheme)

    def __getstate__(self):
        return {
            "num_perm": self.num_perm,
            "seed": self.seed,
            "scheme": self.scheme,
            "shingle_size": self.shingle_size,
        }

    def __setstate__(self, state):
        self.__init__(**state)

    def signature(self, key: str) -> np.ndarray:
        """uint32[num_perm]; all MAX_HASH for the empty key (which has no shingles)."""
        out = np.empty(self.num_perm, dtype=np.uint32)
        _signature(code_points(key), self.shingle_size, self._scheme_id, self._a, self._b, out)
        return out

    def signatures(self, keys: list[str]) -> np.ndarray:
        """uint32[len(keys), num_perm]."""
        out = np.empty((len(keys), self.num_perm), dtype=np.uint32)
        for i, key in enumerate(keys):
            _signature(
                code_points(key), self.shingle_size, self._scheme_id, self._a, self._b, out[i]
            )
        return out

    @staticmethod
    def jaccard(a: np.ndarray, b: np.ndarray) -> float:
        """Jaccard similarity of two `shingle_hashes` sets (sorted, distinct)."""
        if not a.size and not b.size:
            return 1.0
        inter = _sorted_intersection_size(a, b)
        return inter / (a.size + b.size - inter)

    def shingle_hashes(self, key: str) -> np.ndarray:
        """Sorted distinct 32-bit shingle hashes of the key (the set exact verification uses)."""
        hashes = np.sort(_hash_shingles(code_points(key), self.shingle_size))
        # Sort and drop repeats: NumPy 2's np.unique takes a hash-table path here that
        # measured 13x slower than this on 10,000-shingle arrays.
        if hashes.size < 2:
            return hashes
        return hashes[np.concatenate(([True], hashes[1:] != hashes[:-1]))]

    def datasketch(self, key: str):
        """The equivalent `datasketch.MinHash` of the key (for tests and benchmarks)."""
        from datasketch import MinHash

        from beam_jobs.dedup.shingles import shingles

        m = MinHash(
            num_perm=self.num_perm, seed=self.seed, scheme=self.scheme, hashfunc=shingle_hash32
        )
        grams = shingles(key, self.shingle_size)
        if grams:
            m.update_batch(grams)
        return m

    def settings(self) -> dict:
        return {
            "scheme": self.scheme,
            "seed": self.seed,
            "num_perm": self.num_perm,
            "shingle_size": self.shingle_size,
            "shingle_hash": "fnv1a64-codepoints+fmix64, low 32 bits",
        }


def sig_bytes(sig: np.ndarray) -> bytes:
    """A signature as the little-endian bytes that travel between stages (`as_signature`)."""
    return np.ascontiguousarray(sig, dtype="<u4").tobytes()


def as_signature(sig: np.ndarray | bytes) -> np.ndarray:
    """The uint32 array of a signature given as an array or as `sig_bytes`."""
    return np.frombuffer(sig, dtype="<u4") if isinstance(sig, bytes) else sig


def estimate_jaccard(sig_a: np.ndarray | bytes, sig_b: np.ndarray | bytes) -> float:
    """Fraction of equal hash values: datasketch's `MinHash.jaccard`."""
    a, b = as_signature(sig_a), as_signature(sig_b)
    return float(np.count_nonzero(a == b)) / len(a)
