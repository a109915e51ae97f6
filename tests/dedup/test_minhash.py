"""Shingles and MinHash signatures: identical to datasketch, as accurate, and picklable."""

import pickle
import random
import subprocess
import sys

import numpy as np
import pytest
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from beam_jobs.dedup.minhash import (
    MAX_HASH,
    MinHasher,
    _hash_shingles,
    estimate_jaccard,
    permutations,
)
from beam_jobs.dedup.shingles import jaccard, shingle_hash32, shingle_set, shingles
from beam_jobs.text.codepoints import code_points


def test_shingles_of_short_and_empty_keys():
    assert shingles("abcd", 3) == ["abc", "bcd"]
    assert shingles("ab", 3) == ["ab"]  # a short key is one shingle, not none
    assert shingles("", 3) == []


@settings(deadline=None)  # the first example may compile the numba kernels (cold cache)
@given(st.text(max_size=40), st.integers(1, 6))
def test_kernel_hashes_equal_python_twin(key, n):
    got = _hash_shingles(code_points(key), n).tolist()
    assert got == [shingle_hash32(s) for s in shingles(key, n)]


@pytest.mark.parametrize("scheme", ["affine32", "legacy"])
@settings(max_examples=40, deadline=None)
@given(key=st.text(min_size=1, max_size=300), n=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_signature_equals_datasketch(scheme, key, n, seed):
    hasher = MinHasher(64, seed, scheme, n)
    m = MinHash(num_perm=64, seed=seed, scheme=scheme, hashfunc=shingle_hash32)
    m.update_batch(shingles(key, n))
    assert np.array_equal(hasher.signature(key), m.hashvalues.astype(np.uint32))


def test_permutations_equal_datasketch():
    for scheme in ("affine32", "legacy"):
        a, b = permutations(128, 42, scheme)
        ref = MinHash(num_perm=128, seed=42, scheme=scheme).permutations
        assert np.array_equal(a, np.asarray(ref[0])) and np.array_equal(b, np.asarray(ref[1]))


def test_short_keys_do_not_share_a_signature():
    hasher = MinHasher(128, 1, "affine32", 5)
    sigs = {bytes(hasher.signature(k)) for k in ["あ", "い", "あい", "x", "xy"]}
    assert len(sigs) == 5
    assert (hasher.signature("") == MAX_HASH).all()


def test_signatures_batch_equals_single():
    hasher = MinHasher(32, 3, "affine32", 3)
    keys = ["abcdef", "", "xy", "日本語のテキスト"]
    assert np.array_equal(hasher.signatures(keys), np.stack([hasher.signature(k) for k in keys]))


def test_pickles_by_parameters_and_works_in_a_fresh_process():
    hasher = MinHasher(64, 7, "affine32", 4)
    blob = pickle.dumps(hasher)
    assert len(blob) < 400  # parameters only, no arrays or jitted functions
    assert np.array_equal(
        pickle.loads(blob).signature("テスト文書です"), hasher.signature("テスト文書です")
    )
    code = (
        "import pickle,sys; h=pickle.loads(sys.stdin.buffer.read()); "
        "sys.stdout.write(h.signature('テスト文書です').tobytes().hex())"
    )
    out = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True, check=True)
    assert bytes.fromhex(out.stdout.decode()) == hasher.signature("テスト文書です").tobytes()


def _pair(rng, size, jac):
    """Two sets of random 6-char strings with exact Jaccard close to `jac`."""
    common = round(2 * size * jac / (1 + jac))
    pool = ["".join(rng.choice("あいうえおかきくけこ") for _ in range(6)) for _ in range(3 * size)]
    pool = list(dict.fromkeys(pool))
    shared, rest = pool[:common], pool[common:]
    a = shared + rest[: size - common]
    b = shared + rest[size - common : 2 * (size - common)]
    return "".join(a), "".join(b)


def test_estimate_as_accurate_as_datasketch_default():
    """Our default signature vs datasketch's default (SHA-1, affine32), both against exact
    Jaccard of the 5-shingle sets, over pairs of varied size and similarity."""
    rng = random.Random(0)
    ours, theirs = [], []
    hasher = MinHasher(128, 1, "affine32", 5)
    for trial in range(120):
        size = [20, 60, 200, 800][trial % 4]
        x, y = _pair(rng, size, rng.uniform(0.3, 0.95))
        exact = jaccard(shingle_set(x, 5), shingle_set(y, 5))
        ours.append(estimate_jaccard(hasher.signature(x), hasher.signature(y)) - exact)
        mx, my = MinHash(128, seed=trial + 1), MinHash(128, seed=trial + 1)
        mx.update_batch([s.encode() for s in shingles(x, 5)])
        my.update_batch([s.encode() for s in shingles(y, 5)])
        theirs.append(mx.jaccard(my) - exact)
    rmse_ours, rmse_theirs = np.sqrt(np.mean(np.square(ours))), np.sqrt(np.mean(np.square(theirs)))
    assert abs(np.mean(ours)) < 0.01  # unbiased
    assert rmse_ours < 0.045  # sqrt(J(1-J)/128) <= 0.044
    assert rmse_ours <= rmse_theirs * 1.15


def test_exact_jaccard_of_hash_sets():
    hasher = MinHasher(16, 1, "affine32", 3)
    a, b = "今日は良い天気です", "今日は悪い天気です"
    expected = jaccard(shingle_set(a, 3), shingle_set(b, 3))
    assert MinHasher.jaccard(hasher.shingle_hashes(a), hasher.shingle_hashes(b)) == expected
