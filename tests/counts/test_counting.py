from collections import Counter

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from beam_jobs.counts.counting import (
    build_vocab,
    merge_packed,
    ngram_list_array,
    ngrams_of,
    pack_ngram,
    packed_ngrams,
    unpack_ngrams,
)


def strictly_increasing(keys: np.ndarray) -> bool:
    """Sorted and unique, compared as uint64 (a float64 cast merges keys above 2**53)."""
    return bool(np.all(keys[1:] > keys[:-1]))


def packed_as_counter(text: str, order: int) -> Counter:
    out = Counter()
    for n, (keys, counts) in enumerate(packed_ngrams(text, order), 1):
        for gram, count in zip(unpack_ngrams(keys, n), counts.tolist()):
            out[tuple(gram)] = count
    return out


def test_reference_counts_marks_document_boundaries():
    counts = ngrams_of(list("ab"), 3)
    assert counts[("<bos>",)] == 1 and counts[("<eos>",)] == 1
    assert counts[("<bos>", "a", "b")] == 1 and counts[("a", "b", "<eos>")] == 1
    assert sum(c for g, c in counts.items() if len(g) == 2) == 3


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.integers(min_value=1, max_value=3))
def test_packed_counts_equal_counter_on_any_text(text, order):
    assert packed_as_counter(text, order) == ngrams_of(list(text), order)


def test_packed_counts_with_astral_and_combining_characters():
    text = "𠮷野家で🙂を食べた\u3099ｶﾞ"
    assert packed_as_counter(text, 3) == ngrams_of(list(text), 3)


def test_merge_packed_sums_counts():
    a = packed_ngrams("あいう", 2)[1]
    b = packed_ngrams("いうえ", 2)[1]
    keys, counts = merge_packed([a, b])
    got = {tuple(g): c for g, c in zip(unpack_ngrams(keys, 2), counts.tolist())}
    expected = ngrams_of(list("あいう"), 2) + ngrams_of(list("いうえ"), 2)
    assert got == {g: c for g, c in expected.items() if len(g) == 2}
    assert strictly_increasing(keys)


def test_pack_ngram_matches_packed_keys():
    keys = packed_ngrams("ab", 2)[1][0]
    assert sorted(keys.tolist()) == sorted(
        pack_ngram(g) for g in (["<bos>", "a"], ["a", "b"], ["b", "<eos>"]))


def test_build_vocab_orders_and_caps():
    counts = Counter({"a": 5, "b": 5, "c": 2, "d": 1, "<bos>": 4, "<eos>": 4})
    vocab = build_vocab(counts)
    assert vocab["tokens"] == ["<unk>", "<bos>", "<eos>", "a", "b", "c", "d"]
    assert vocab["counts"] == [0, 4, 4, 5, 5, 2, 1]
    capped = build_vocab(counts, min_count=2, max_vocab=5)
    assert capped["tokens"] == ["<unk>", "<bos>", "<eos>", "a", "b"]
    assert capped["unk_tokens"] == 3 and capped["counts"][0] == 3
    assert capped["total_tokens"] == 13


@pytest.mark.parametrize("min_count", [1, 3])
def test_vocab_min_count(min_count):
    vocab = build_vocab(Counter("aaabbc"), min_count=min_count)
    assert all(c >= min_count for c in vocab["counts"][3:])


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=80), st.integers(min_value=1, max_value=3))
def test_arrow_ngram_column_equals_python_unpacking(text, order):
    keys = packed_ngrams(text, order)[order - 1][0]
    assert ngram_list_array(keys, order).to_pylist() == unpack_ngrams(keys, order)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_char_token_counts_equal_counter_on_any_text(text):
    from beam_jobs.tokens.tokenizers import CharTokenizer

    counts = CharTokenizer().counts(text)
    assert counts == Counter(text)
    assert all(type(c) is int for c in counts.values())  # JSON-ready, as vocab.json needs


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=5), st.integers(min_value=1, max_value=3))
# Two keys 1 apart above 2**53 (CI found it): float64 would see them equal.
@example(texts=["00", "01"], order=3)
def test_packed_counts_of_many_documents_are_their_sum(texts, order):
    from beam_jobs.counts.counting import packed_ngrams_of_many

    expected = Counter()
    for text in texts:
        expected.update(ngrams_of(list(text), order))
    got = Counter()
    for n, (keys, counts) in enumerate(packed_ngrams_of_many(texts, order), 1):
        assert strictly_increasing(keys)  # sorted, unique
        for gram, count in zip(unpack_ngrams(keys, n), counts.tolist()):
            got[tuple(gram)] = count
    assert got == expected
