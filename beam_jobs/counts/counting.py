"""Token and n-gram counting, pure and vectorized, for any order.

Each document counts as `<bos> t1 … tk <eos>`; every n-gram of that sequence, for each
order 1..N, is counted once (so the counts equal a `collections.Counter` over the same
sequences: `ngrams_of` is that reference).

Tokens are uint32 codes (`TokenCodes`: code points for the character tokenizer, ids for a
tokenizer with its own vocabulary). An n-gram table of order n (`Table`) holds the exact
codes of each distinct n-gram (`grams`, rows × n uint32), its count, and a 64-bit hash `key`
that the rows are sorted by. The key is only the sort and shard key: rows are equal when
their codes are, so a hash collision costs a slower sort (`unique_rows` detects it and sorts
by the codes too), never a wrong count. Orders are unbounded (the one-uint64 packing of
21-bit code points this replaces stopped at order 3), at 8 + 4n + 8 bytes per distinct
n-gram.

A batch of documents is counted with one hash pass and one sort per order, with no Python
loop per n-gram; tables from different batches or workers merge by concatenation and the same
sort (`merge_tables`).
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from beam_jobs.text.codepoints import code_points
from beam_jobs.tokens.tokenizers import BOS, EOS, SPECIAL_TOKENS, UNK, get_tokenizer

CHAR_BOS, CHAR_EOS = 0x110000, 0x110001  # just past Unicode
ID_BOS, ID_EOS = 0xFFFFFFFE, 0xFFFFFFFF  # past any id of a subword vocabulary

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


class Table(NamedTuple):
    """Distinct n-grams of one order: sorted by (key, codes), unique, with their counts."""

    keys: np.ndarray  # uint64
    grams: np.ndarray  # (rows, n) uint32
    counts: np.ndarray  # int64

    @property
    def nbytes(self) -> int:
        return self.keys.nbytes + self.grams.nbytes + self.counts.nbytes

    def take(self, index) -> Table:
        return Table(self.keys[index], self.grams[index], self.counts[index])


def empty_table(order: int) -> Table:
    return Table(np.zeros(0, np.uint64), np.zeros((0, order), np.uint32), np.zeros(0, np.int64))


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: every input bit reaches every output bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def extend_hash(prefix: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Key of (prefix n-gram + one token) from the prefix's key (0 for the empty prefix)."""
    return _mix(prefix * _GOLDEN + codes.astype(np.uint64) + np.uint64(1))


def hash_rows(grams: np.ndarray) -> np.ndarray:
    """Key of each row of a (rows, n) code matrix; n = 0 gives 0 (the empty n-gram)."""
    key = np.zeros(len(grams), np.uint64)
    with np.errstate(over="ignore"):
        for j in range(grams.shape[1]):
            key = extend_hash(key, grams[:, j])
    return key


def unique_rows(keys: np.ndarray, grams: np.ndarray, counts: np.ndarray) -> Table:
    """Sum the counts of equal rows; the result sorted by (key, codes)."""
    if not len(keys):
        return Table(keys.astype(np.uint64), grams.astype(np.uint32), counts.astype(np.int64))
    order = np.argsort(keys, kind="stable")
    k, g = keys[order], grams[order]
    same_key = k[1:] == k[:-1]
    differ = (g[1:] != g[:-1]).any(axis=1) if g.shape[1] else np.zeros(len(k) - 1, bool)
    if (same_key & differ).any():  # a hash collision: equal rows may not be adjacent
        order = np.lexsort([*grams.T[::-1], keys])
        k, g = keys[order], grams[order]
        same_key = k[1:] == k[:-1]
        differ = (g[1:] != g[:-1]).any(axis=1)
    starts = np.flatnonzero(np.concatenate(([True], ~same_key | differ)))
    summed = np.add.reduceat(counts[order].astype(np.int64), starts)
    return Table(k[starts], g[starts], summed)


def merge_tables(tables: list[Table]) -> Table:
    """Sum several tables of one order into one."""
    tables = [t for t in tables if len(t.keys)]
    if len(tables) <= 1:
        return tables[0] if tables else None
    return unique_rows(
        np.concatenate([t.keys for t in tables]),
        np.concatenate([t.grams for t in tables]),
        np.concatenate([t.counts for t in tables]),
    )


def count_sequences(seqs: list[np.ndarray], order: int) -> list[Table]:
    """Per order n (index n-1): the table of n-grams of `seqs` (each `<bos> … <eos>` codes),
    counted without crossing a sequence boundary."""
    seqs = [s for s in seqs if len(s)]
    if not seqs:
        return [empty_table(n) for n in range(1, order + 1)]
    flat = np.concatenate(seqs).astype(np.uint32)
    lengths = np.array([len(s) for s in seqs])
    ends = np.repeat(np.cumsum(lengths), lengths)  # one past the last token of each position
    positions = np.arange(len(flat))
    tables, key = [], np.zeros(len(flat), np.uint64)
    with np.errstate(over="ignore"):
        for n in range(1, order + 1):
            # key[i]: the n-gram starting at i (positions near the end wrap and are masked)
            key = extend_hash(key, np.roll(flat, -(n - 1)))
            starts = np.flatnonzero(positions + n <= ends)
            grams = flat[starts[:, None] + np.arange(n)]
            tables.append(unique_rows(key[starts], grams, np.ones(len(starts), np.int64)))
    return tables


def shard_keys(table: Table) -> np.ndarray:
    """The key an n-gram is sharded by: its last n-1 tokens (a unigram: itself). All the
    left extensions x·g of an n-gram g then land on one shard, the shard of g's own key,
    where g's continuation count is complete."""
    n = table.grams.shape[1]
    return table.keys if n == 1 else hash_rows(table.grams[:, 1:])


def split_by_shard(table: Table, num_shards: int) -> list[tuple[int, Table]]:
    """(shard, part) for the shards that get rows; each part stays sorted."""
    shards = shard_keys(table) % np.uint64(num_shards)
    by_shard = np.argsort(shards, kind="stable")
    bounds = np.searchsorted(shards[by_shard], np.arange(num_shards + 1))
    return [
        (s, table.take(by_shard[bounds[s] : bounds[s + 1]]))
        for s in range(num_shards)
        if bounds[s + 1] > bounds[s]
    ]


class TokenCodes:
    """Texts → `<bos> … <eos>` code sequences, and codes back to token strings."""

    def __init__(self, tokenizer: str | dict, base_dir: str | None = None):
        self.tokenizer_config = tokenizer
        self.base_dir = base_dir
        self._tokenizer = None
        self.chars = (tokenizer if isinstance(tokenizer, str) else tokenizer["name"]) == "char"
        self.bos, self.eos = (CHAR_BOS, CHAR_EOS) if self.chars else (ID_BOS, ID_EOS)

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = get_tokenizer(self.tokenizer_config, self.base_dir)
            if not self.chars and not self._tokenizer.has_ids:
                raise ValueError(
                    f"n-gram counting needs token ids; tokenizer {self._tokenizer.name!r} has none"
                )
        return self._tokenizer

    def sequences(self, texts) -> list[np.ndarray]:
        texts = list(texts)
        ids = [code_points(t) for t in texts] if self.chars else self.tokenizer.encode_batch(texts)
        bos, eos = np.array([self.bos], np.uint32), np.array([self.eos], np.uint32)
        return [np.concatenate((bos, np.asarray(i, np.uint32), eos)) for i in ids]

    def token(self, code: int) -> str:
        if code == self.bos:
            return BOS
        if code == self.eos:
            return EOS
        return chr(code) if self.chars else self.tokenizer.id_to_piece(code)

    def list_array(self, grams: np.ndarray) -> pa.ListArray:
        """A (rows, n) code matrix → an Arrow list<string> column, with one Python call per
        distinct token rather than per n-gram (an Arrow `take` spreads them)."""
        rows, n = grams.shape
        uniq, inverse = np.unique(grams.ravel(), return_inverse=True)
        values = pa.array([self.token(c) for c in uniq.tolist()], pa.string()).take(
            pa.array(inverse.astype(np.int32))
        )
        offsets = pa.array(np.arange(0, rows * n + 1, n, dtype=np.int32))
        return pa.ListArray.from_arrays(offsets, values)


def ngrams_of(tokens: list[str], order: int) -> Counter:
    """The reference: a Counter of n-gram tuples of `<bos> tokens <eos>` for n = 1..order."""
    seq = [BOS, *tokens, EOS]
    counts: Counter = Counter()
    for n in range(1, order + 1):
        counts.update(zip(*(seq[i:] for i in range(n))))
    return counts


def merge_counters(counters) -> Counter:
    """Sum Counters into the first one (the merge step of the Counter-based combiners)."""
    counters = iter(counters)
    total = next(counters)
    for counter in counters:
        total.update(counter)
    return total


def build_vocab(counts: Counter | dict, min_count: int = 1, max_vocab: int = 0) -> dict:
    """Specials first, then tokens by descending count (ties by token); the vocab.json body."""
    ranked = sorted(
        ((t, c) for t, c in counts.items() if t not in SPECIAL_TOKENS),
        key=lambda tc: (-tc[1], tc[0]),
    )
    limit = max_vocab - len(SPECIAL_TOKENS) if max_vocab else len(ranked)
    kept = [(t, c) for t, c in ranked if c >= min_count][:limit]
    total = sum(c for _, c in ranked)
    unk = total - sum(c for _, c in kept)
    docs = counts.get(BOS, 0)
    return {
        "special_tokens": list(SPECIAL_TOKENS),
        "tokens": [UNK, BOS, EOS] + [t for t, _ in kept],
        "counts": [unk, docs, docs] + [c for _, c in kept],
        "min_count": min_count,
        "max_vocab": max_vocab,
        "total_tokens": total,
        "unk_tokens": unk,
    }
