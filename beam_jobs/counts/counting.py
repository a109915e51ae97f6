"""Token and n-gram counting, pure and vectorized where the tokenizer allows it.

Each document counts as `<bos> t1 … tk <eos>`; every n-gram of that sequence, for each
order 1..N, is counted once (so the counts equal a `collections.Counter` over the same
sequences). For character tokens and N ≤ 3 an n-gram packs into one uint64 (21 bits per code
point), so a document's counts are one `np.unique` per order instead of a Python loop; other
tokenizers or orders use Counters of token tuples.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa

from beam_jobs.text.codepoints import code_points
from beam_jobs.tokens.tokenizers import BOS, EOS, SPECIAL_TOKENS, UNK

BITS = 21
BOS_CODE, EOS_CODE = 0x110000, 0x110001  # just past Unicode, inside 21 bits
MAX_PACKED_ORDER = 64 // BITS
_MASK = np.uint64((1 << BITS) - 1)


def ngrams_of(tokens: list[str], order: int) -> Counter:
    """The reference: a Counter of n-gram tuples of `<bos> tokens <eos>` for n = 1..order."""
    seq = [BOS, *tokens, EOS]
    counts: Counter = Counter()
    for n in range(1, order + 1):
        counts.update(zip(*(seq[i:] for i in range(n))))
    return counts


def packed_ngrams(text: str, order: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per order n (index n-1): sorted unique packed n-grams of a document and their counts."""
    return packed_ngrams_of_many([text], order)


def packed_ngrams_of_many(texts, order: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """`packed_ngrams` summed over several documents: one sort per order for all of them."""
    per_order: list[list[np.ndarray]] = [[] for _ in range(order)]
    for text in texts:
        codes = code_points(text).astype(np.uint64)
        seq = np.concatenate(([BOS_CODE], codes, [EOS_CODE])).astype(np.uint64)
        for n in range(1, order + 1):
            packed = np.zeros(len(seq) - n + 1, dtype=np.uint64)
            for i in range(n):
                packed = (packed << np.uint64(BITS)) | seq[i: i + len(packed)]
            per_order[n - 1].append(packed)
    return [np.unique(np.concatenate(p) if p else np.zeros(0, np.uint64), return_counts=True)
            for p in per_order]


def merge_packed(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Sum the counts of several (keys, counts) pairs; keys come back sorted and unique."""
    parts = [p for p in parts if len(p[0])]
    if not parts:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    if len(parts) == 1:
        return parts[0][0], parts[0][1].astype(np.int64)
    keys = np.concatenate([p[0] for p in parts])
    counts = np.concatenate([p[1] for p in parts]).astype(np.int64)
    uniq, inverse = np.unique(keys, return_inverse=True)
    return uniq, np.bincount(inverse, weights=counts, minlength=len(uniq)).astype(np.int64)


def _code_to_token(code: int) -> str:
    if code == BOS_CODE:
        return BOS
    if code == EOS_CODE:
        return EOS
    return chr(code)


def unpack_codes(keys: np.ndarray, order: int) -> np.ndarray:
    """Packed keys of one order → (len(keys), order) array of code points."""
    shifts = np.uint64(BITS) * np.arange(order - 1, -1, -1, dtype=np.uint64)
    return ((keys[:, None] >> shifts[None, :]) & _MASK).astype(np.uint32)


def unpack_ngrams(keys: np.ndarray, order: int) -> list[list[str]]:
    """Packed keys of one order → lists of token strings."""
    return [[_code_to_token(c) for c in gram] for gram in unpack_codes(keys, order).tolist()]


def ngram_list_array(keys: np.ndarray, order: int) -> pa.ListArray:
    """Packed keys of one order → an Arrow list<string> column, without a Python loop per
    n-gram: distinct code points become strings once, then an Arrow `take` spreads them."""
    flat = unpack_codes(keys, order).ravel()
    uniq, inverse = np.unique(flat, return_inverse=True)
    values = pa.array([_code_to_token(c) for c in uniq.tolist()], pa.string()).take(
        pa.array(inverse.astype(np.int32)))
    offsets = pa.array(np.arange(0, len(flat) + 1, order, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, values)


def pack_ngram(tokens: list[str]) -> int:
    """The packed key of one character n-gram (the reference the tests check keys against)."""
    key = 0
    for tok in tokens:
        code = BOS_CODE if tok == BOS else EOS_CODE if tok == EOS else ord(tok)
        key = (key << BITS) | code
    return key


def merge_counters(counters) -> Counter:
    """Sum Counters into the first one (the merge step of the Counter-based combiners)."""
    counters = iter(counters)
    total = next(counters)
    for counter in counters:
        total.update(counter)
    return total


def build_vocab(counts: Counter | dict, min_count: int = 1, max_vocab: int = 0) -> dict:
    """Specials first, then tokens by descending count (ties by token); the vocab.json body."""
    ranked = sorted(((t, c) for t, c in counts.items() if t not in SPECIAL_TOKENS),
                    key=lambda tc: (-tc[1], tc[0]))
    limit = max_vocab - len(SPECIAL_TOKENS) if max_vocab else len(ranked)
    kept = [(t, c) for t, c in ranked if c >= min_count][:limit]
    total = sum(c for _, c in ranked)
    unk = total - sum(c for _, c in kept)
    docs = counts.get(BOS, 0)
    return {
        "special_tokens": list(SPECIAL_TOKENS),
        "tokens": [UNK, BOS, EOS] + [t for t, _ in kept],
        "counts": [unk, docs, docs] + [c for _, c in kept],
        "min_count": min_count, "max_vocab": max_vocab,
        "total_tokens": total, "unk_tokens": unk,
    }
