from collections import Counter

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from beam_jobs.counts.counting import (
    CHAR_BOS,
    TokenCodes,
    build_vocab,
    count_sequences,
    hash_rows,
    merge_tables,
    ngrams_of,
    split_by_shard,
    unique_rows,
)

CODES = TokenCodes("char")


def as_counter(tables) -> Counter:
    out = Counter()
    for t in tables:
        for gram, count in zip(t.grams.tolist(), t.counts.tolist()):
            out[tuple(CODES.token(c) for c in gram)] += count
    return out


def reference(texts, order) -> Counter:
    want = Counter()
    for text in texts:
        want.update(ngrams_of(list(text), order))
    return want


def sorted_unique(t) -> bool:
    """Sorted by key and no row twice (rows sharing a key are distinct)."""
    rows = {(k, tuple(g)) for k, g in zip(t.keys.tolist(), t.grams.tolist())}
    return bool(np.all(t.keys[1:] >= t.keys[:-1])) and len(rows) == len(t.keys)


def test_reference_counts_marks_document_boundaries():
    counts = ngrams_of(list("ab"), 3)
    assert counts[("<bos>",)] == 1 and counts[("<eos>",)] == 1
    assert counts[("<bos>", "a", "b")] == 1 and counts[("a", "b", "<eos>")] == 1
    assert sum(c for g, c in counts.items() if len(g) == 2) == 3


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=5), st.integers(min_value=1, max_value=9))
@example(["ああああああああああ", "ああ"], 9)
def test_counts_of_any_order_equal_counter(texts, order):
    tables = count_sequences(CODES.sequences(texts), order)
    assert [t.grams.shape[1] for t in tables] == list(range(1, order + 1))
    assert all(sorted_unique(t) for t in tables)
    assert as_counter(tables) == reference(texts, order)


def test_counts_with_astral_and_combining_characters():
    text = "𠮷野家で🙂を食べた\u3099ｶﾞ"
    assert as_counter(count_sequences(CODES.sequences([text]), 6)) == reference([text], 6)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(0, 2)), min_size=1, max_size=60
    )
)
def test_unique_rows_is_exact_under_hash_collisions(rows):
    # keys of 2 bits: most distinct rows collide, and colliding rows come interleaved
    rows = np.array(rows)
    keys = (rows[:, 0] * 7 + rows[:, 1]).astype(np.uint64) % np.uint64(4)
    grams = rows[:, 1:].astype(np.uint32)
    counts = rows[:, 0].astype(np.int64) + 1
    t = unique_rows(keys, grams, counts)
    want = Counter()
    for k, g, c in zip(keys.tolist(), grams.tolist(), counts.tolist()):
        want[(k, tuple(g))] += c
    assert {
        (k, tuple(g)): c for k, g, c in zip(t.keys.tolist(), t.grams.tolist(), t.counts.tolist())
    } == want
    assert sorted_unique(t)


def test_merge_tables_sums_counts_across_batches():
    a = count_sequences(CODES.sequences(["あいう", "いう"]), 3)
    b = count_sequences(CODES.sequences(["いうえ"]), 3)
    merged = [merge_tables([x, y]) for x, y in zip(a, b)]
    assert as_counter(merged) == reference(["あいう", "いう", "いうえ"], 3)
    assert all(sorted_unique(t) for t in merged)


def test_shards_keep_left_extensions_together():
    tables = count_sequences(CODES.sequences(["abcabdxbc", "cabc"]), 4)
    for n in range(2, 5):
        for shard, part in split_by_shard(tables[n - 1], 3):
            # every x.g in this shard has its suffix g hashing to the same shard
            suffix = hash_rows(part.grams[:, 1:]) % np.uint64(3)
            assert set(suffix.tolist()) == {shard}
    parts = split_by_shard(tables[2], 3)
    assert sum(len(p.keys) for _, p in parts) == len(tables[2].keys)


def test_hash_rows_extends_prefix_keys():
    grams = np.array([[1, 2, 3], [1, 2, 4]], np.uint32)
    assert hash_rows(grams[:, :0]).tolist() == [0, 0]
    assert len(set(hash_rows(grams).tolist())) == 2


def test_sequences_mark_bos_and_eos():
    seq = CODES.sequences(["ab"])[0]
    assert seq.tolist() == [CHAR_BOS, ord("a"), ord("b"), CODES.eos]


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
@given(st.lists(st.text(max_size=30), max_size=4), st.integers(min_value=1, max_value=5))
def test_arrow_ngram_column_equals_python_tokens(texts, order):
    t = count_sequences(CODES.sequences(texts), order)[order - 1]
    assert CODES.list_array(t.grams).to_pylist() == [
        [CODES.token(c) for c in g] for g in t.grams.tolist()
    ]


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_char_token_counts_equal_counter_on_any_text(text):
    from beam_jobs.tokens.tokenizers import CharTokenizer

    counts = CharTokenizer().counts(text)
    assert counts == Counter(text)
    assert all(type(c) is int for c in counts.values())  # JSON-ready, as vocab.json needs
