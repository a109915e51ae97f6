"""Property tests across the pure functions: MinHash estimates stay within their error."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from beam_jobs.dedup.minhash import MinHasher, estimate_jaccard
from beam_jobs.dedup.shingles import jaccard, shingle_set

HASHER = MinHasher(256, 7, "affine32", 3)


@settings(max_examples=150, deadline=None)
@given(
    st.text(alphabet="あいうえおかきくけこさしすせそ abc", min_size=20, max_size=300),
    st.text(alphabet="あいうえおかきくけこさしすせそ abc", min_size=20, max_size=300),
    st.integers(0, 300),
)
def test_jaccard_estimate_within_its_standard_error(a, b, cut):
    # Mix the two texts so pairs span the whole range of similarities.
    b = a[:cut] + b
    exact = jaccard(shingle_set(a, 3), shingle_set(b, 3))
    estimate = estimate_jaccard(HASHER.signature(a), HASHER.signature(b))
    # k independent hash values: standard error sqrt(J(1-J)/k); 5 sigmas plus one value's
    # worth of slack keeps the test honest and essentially never flaky.
    bound = 5 * math.sqrt(exact * (1 - exact) / 256) + 1 / 256
    assert abs(estimate - exact) <= bound + 1e-9


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_signatures_never_raise_and_are_deterministic(text):
    assert (HASHER.signature(text) == HASHER.signature(text)).all()


@given(st.lists(st.integers(0, 300), max_size=200), st.lists(st.integers(0, 300), max_size=200))
def test_exact_jaccard_of_shingle_sets_equals_the_set_formula(a, b):
    sa, sb = set(a), set(b)
    fa, fb = (np.array(sorted(s), dtype=np.uint32) for s in (sa, sb))
    expected = len(sa & sb) / len(sa | sb) if sa | sb else 1.0
    assert MinHasher.jaccard(fa, fb) == expected
