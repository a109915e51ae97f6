"""The tokenizer's training sample: chosen by a hash of the id, bounded in bytes, and the same
whatever the order or partition of the documents (so a combiner gives it on any runner)."""

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beam_jobs.tokens.sample import BoundedSample, sample_key
from beam_jobs.tokens.train import TrainConfig


def oracle(docs: list[tuple[str, str]], budget: int) -> list[tuple[str, str]]:
    """Sort everything by (key, id); keep documents until their bytes reach the budget."""
    out, total = [], 0
    for doc_id, text in sorted(docs, key=lambda d: (sample_key(d[0]), d[0])):
        if total >= budget:
            break
        out.append((doc_id, text))
        total += len(text.encode())
    return out


def sample_of(docs, budget) -> BoundedSample:
    sample = BoundedSample(budget)
    for doc_id, text in docs:
        sample.add_document(doc_id, text)
    return sample


docs_strategy = st.lists(
    st.tuples(st.text(min_size=1, max_size=8), st.text(max_size=30)),
    max_size=40,
    unique_by=lambda d: d[0],
)


@settings(max_examples=200, deadline=None)
@given(
    docs=docs_strategy,
    budget=st.integers(1, 400),
    parts=st.integers(1, 5),
    seed=st.integers(0, 10**6),
)
def test_sample_equals_the_sorted_prefix_for_any_order_and_partition(docs, budget, parts, seed):
    rng = random.Random(seed)
    shuffled = docs[:]
    rng.shuffle(shuffled)
    pieces = [sample_of(shuffled[k::parts], budget) for k in range(parts)]
    merged = BoundedSample(budget).merge(pieces)
    assert merged.documents() == oracle(docs, budget)
    assert sample_of(docs, budget).documents() == oracle(docs, budget)
    largest = max((len(t.encode()) for _, t in docs), default=0)
    for part in [*pieces, merged]:  # bounded: the budget plus one document at most
        assert part.total < budget + max(largest, 1)


def test_sample_key_is_stable_and_salted():
    assert sample_key("doc-1") == sample_key("doc-1")
    assert sample_key("doc-1") != sample_key("doc-1", seed="1")
    # The documented rule (a change would move every sample, so every trained model).
    digest = hashlib.blake2b("文書-1".encode(), digest_size=8, person=b"tokenizer0").digest()
    assert sample_key("文書-1") == int.from_bytes(digest, "big")


def test_summary_and_config():
    sample = sample_of([("a", "あい"), ("b", "x" * 10)], budget=5)
    assert sample.summary()["documents"] == len(sample) >= 1
    assert TrainConfig(sample_mb=2).new_sample().budget == 2_000_000
    with pytest.raises(ValueError, match="positive"):
        BoundedSample(0)
    with pytest.raises(ValueError, match="at least 260"):
        TrainConfig(vocab_size=100)
    with pytest.raises(ValueError, match="one of"):
        TrainConfig(kind="wordpiece")
