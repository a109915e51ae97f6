"""The pipeline's n-gram count tables over the manifest vocabulary, and what Kneser-Ney
needs of them.

`CountTables` holds, per order n, the distinct n-grams over the *manifest vocabulary*
(out-of-vocabulary tokens mapped to `<unk>` and their counts merged). An n-gram is stored as
the integer key `prefix_index * V + last_id`, where `prefix_index` is the row of its first n-1
tokens in the order n-1 table (order 1 is dense: row = token id), so every table is a sorted
int64 array and lookups are `np.searchsorted`, vectorized over a whole token stream.

Adjusted counts (`adjusted`): at the highest order of a model, raw counts; below it,
continuation counts N1+(. g), the number of distinct left extensions (raw counts for n-grams
that start with `<bos>`, which have none). Unpruned tables give them exactly (`suffix_rows`).
Pruned tables (`--ngram-min-count`, `beam_jobs.counts.pruning`) cannot: the pipeline took them
before pruning, with the continuation mass of the pruned n-grams per context and the counts of
counts, in `ngrams/_continuation/` and `ngrams/_pruning.json`, which `from_parquet` reads.
With a vocabulary that maps tokens to `<unk>`, the pipeline's continuation counts of the merged
n-grams are summed (an upper bound of their distinct left extensions); unpruned tables are
mapped exactly.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from beam_jobs.text.perplexity import lookup_rows
from lm.data import Vocab
from lm.errors import DataDirError

PRUNING_JSON = "ngrams/_pruning.json"


class CountTables:
    def __init__(self, vocab_size: int, bos: int, eos: int, unk: int):
        self.V, self.bos, self.eos, self.unk = vocab_size, bos, eos, unk
        self.keys: list[np.ndarray | None] = [None, np.arange(vocab_size, dtype=np.int64)]
        self.counts: list[np.ndarray | None] = [None, np.zeros(vocab_size, dtype=np.int64)]
        # set by `attach_pruning` when the tables were pruned in the pipeline
        self.pruned = False
        self.continuation: dict[int, np.ndarray] = {}
        self.pruned_mass: dict[int, np.ndarray] = {}
        self.counts_of_counts: dict[tuple[str, int], np.ndarray] = {}
        self._suffix: dict[int, np.ndarray] = {}

    @property
    def order(self) -> int:
        return len(self.keys) - 1

    def lookup(self, n: int, keys: np.ndarray) -> np.ndarray:
        """Row of each key in the order-n table, -1 where absent (keys < 0 stay absent)."""
        return lookup_rows(self.keys, self.V, n, keys)

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Row in the order-n table of each n-gram of an (rows, n) id matrix, -1 if absent."""
        idx = ids[:, 0].astype(np.int64)
        for k in range(1, ids.shape[1]):
            idx = self.lookup(k + 1, np.where(idx >= 0, idx * self.V + ids[:, k], -1))
        return idx

    def add_order(self, n: int, ids: np.ndarray, counts: np.ndarray) -> None:
        """Add the order-n table from an (rows, n) id matrix (duplicates are merged)."""
        if n != self.order + 1 and n != 1:
            raise ValueError(f"orders must be added in sequence; have {self.order}, got {n}")
        counts = np.asarray(counts, dtype=np.int64)
        if n == 1:
            self.counts[1] = np.bincount(ids[:, 0], weights=counts, minlength=self.V).astype(
                np.int64
            )
            return
        idx = self.rows_of(ids[:, : n - 1])
        if (idx < 0).any():
            raise DataDirError(
                f"n-gram counts are inconsistent: an order-{n} n-gram's prefix is missing"
            )
        keys = idx * self.V + ids[:, n - 1]
        uniq, inverse = np.unique(keys, return_inverse=True)
        merged = np.bincount(inverse, weights=counts, minlength=len(uniq))
        self.keys.append(uniq)
        self.counts.append(np.rint(merged).astype(np.int64))

    def attach_pruning(self, summary: dict, rows: dict[int, tuple]) -> None:
        """The pipeline's statistics of pruned tables: `summary` is `_pruning.json`, `rows`
        {order: (ids matrix, continuation, pruned mass)} its continuation rows."""
        self.pruned = True
        for n in range(1, self.order + 1):
            entry = summary["orders"][str(n)]
            self.counts_of_counts[("raw", n)] = np.array(entry["raw_counts_of_counts"])
            self.counts_of_counts[("adjusted", n)] = np.array(entry["adjusted_counts_of_counts"])
            size = len(self.counts[n])
            cont, mass = np.zeros(size, np.int64), np.zeros(size, np.int64)
            if n in rows:
                ids, c, m = rows[n]
                idx = self.rows_of(ids)
                if ((idx < 0) & (c > 0)).any():
                    raise DataDirError(
                        f"n-gram continuation counts name an order-{n} n-gram missing from "
                        "the tables"
                    )
                ok = idx >= 0  # pruned mass of a context that was itself pruned: unused
                cont = np.bincount(idx[ok], weights=c[ok], minlength=size).astype(np.int64)
                mass = np.bincount(idx[ok], weights=m[ok], minlength=size).astype(np.int64)
            self.continuation[n], self.pruned_mass[n] = cont, mass

    @classmethod
    def from_parquet(
        cls, data_dir: str, manifest: dict, vocab: Vocab, max_order: int | None = None
    ) -> CountTables:
        """Read `ngrams/` with pyarrow, batch by batch, mapping tokens to vocabulary ids."""
        order = manifest["ngrams"]["order"]
        order = order if max_order is None else min(max_order, order)
        tables = cls(len(vocab), vocab.bos, vocab.eos, vocab.unk)
        paths = [f"{data_dir}/{p}" for p in manifest["ngrams"]["shards"]]
        for n, ids, (counts,) in _read_rows(paths, vocab, order, ["count"]):
            tables.add_order(n, ids, counts)
        summary = read_pruning(data_dir)
        if summary is not None and summary["continuation"]:
            paths = [f"{data_dir}/{p}" for p in summary["continuation"]]
            rows = {
                n: (ids, c, m)
                for n, ids, (c, m) in _read_rows(
                    paths, vocab, order, ["continuation", "pruned"], required=False
                )
            }
            tables.attach_pruning(summary, rows)
        return tables

    def parent(self, n: int) -> np.ndarray:
        return self.keys[n] // self.V

    def last(self, n: int) -> np.ndarray:
        return self.keys[n] % self.V

    def suffix_rows(self, n: int) -> np.ndarray:
        """For each order-n n-gram, the row of its last n-1 tokens in the order n-1 table."""
        if n not in self._suffix:
            if n == 2:
                rows = self.last(2)
            else:
                prev = self.suffix_rows(n - 1)[self.parent(n)]
                rows = self.lookup(n - 1, prev * self.V + self.last(n))
                if (rows < 0).any():
                    raise DataDirError(
                        f"n-gram counts are inconsistent: a suffix of order {n} is missing"
                    )
            self._suffix[n] = rows
        return self._suffix[n]

    def first_token(self, n: int) -> np.ndarray:
        first = np.arange(self.V)
        for k in range(2, n + 1):
            first = first[self.parent(k)]
        return first

    def adjusted(self, n: int, highest: bool) -> np.ndarray:
        """Adjusted counts of the order-n n-grams (see the module docstring)."""
        if highest:
            a = self.counts[n].copy()
        else:
            if self.pruned:
                a = self.continuation[n].copy()
            else:
                a = np.bincount(self.suffix_rows(n + 1), minlength=len(self.counts[n]))
            starts_bos = self.first_token(n) == self.bos
            a[starts_bos] = self.counts[n][starts_bos]
        if n == 1:
            a[self.bos] = 0  # never predicted
        return a.astype(np.int64)

    def denominators(self, n: int, a: np.ndarray, highest: bool) -> np.ndarray:
        """Per context (row of order n-1; one context at n = 1): the sum of the adjusted counts
        `a` of all its extensions, the pruned ones included."""
        contexts = 1 if n == 1 else len(self.counts[n - 1])
        parent = np.zeros(len(a), dtype=np.int64) if n == 1 else self.parent(n)
        denom = np.bincount(parent, weights=a, minlength=contexts)
        if not self.pruned or n == 1:
            return denom
        # Extensions that carry raw counts (the highest order, or after <bos>) sum to c(ctx);
        # continuation counts add the pruned mass the pipeline kept per context.
        raw = np.full(contexts, highest) | (self.first_token(n - 1) == self.bos)
        full = np.where(raw, self.counts[n - 1], denom + self.pruned_mass[n - 1])
        return np.maximum(full, denom).astype(np.float64)

    def counts_histogram(self, n: int, highest: bool, a: np.ndarray) -> np.ndarray:
        """[n1, n2, n3, n4] of the adjusted counts of order n, before any pruning."""
        if self.pruned:
            return self.counts_of_counts[("raw" if highest else "adjusted", n)]
        a = a[a > 0]
        return np.array([int((a == c).sum()) for c in (1, 2, 3, 4)])

    def ending_rows(self, ids: np.ndarray, order: int) -> list[np.ndarray]:
        """rows[n][j]: row in the order-n table of the n-gram ending at position j, else -1."""
        rows = [None, ids.astype(np.int64)]
        for n in range(2, order + 1):
            prev = np.full(len(ids), -1, dtype=np.int64)
            prev[1:] = rows[n - 1][:-1]
            rows.append(self.lookup(n, np.where(prev >= 0, prev * self.V + ids, -1)))
        return rows

    def context_rows(self, context: list[int], order: int) -> list[int]:
        """ctx[n]: row in the order n-1 table of the last n-1 tokens of `context` (-1: none)."""
        ctx = [-1, 0]
        for n in range(2, order + 1):
            if len(context) < n - 1:
                ctx.append(-1)
                continue
            ctx.append(int(self.rows_of(np.array([context[-(n - 1) :]]))[0]))
        return ctx


def read_pruning(data_dir: str) -> dict | None:
    """`ngrams/_pruning.json`, or None (outputs made before it existed)."""
    path = os.path.join(data_dir, PRUNING_JSON)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _read_rows(paths, vocab: Vocab, order: int, columns: list[str], required: bool = True):
    """Per order n: (n, id matrix, [numpy column per name in `columns`]) of the rows of
    `paths` (Parquet with `order` and `ngram` columns), tokens mapped to vocabulary ids."""
    dataset = ds.dataset(paths, format="parquet")
    value_set = pa.array(vocab.tokens)
    for n in range(1, order + 1):
        id_parts, col_parts = [], [[] for _ in columns]
        scanner = dataset.scanner(columns=["ngram", *columns], filter=ds.field("order") == n)
        for batch in scanner.to_batches():
            if batch.num_rows == 0:
                continue
            lists = batch.column(0)
            if pc.any(pc.not_equal(pc.list_value_length(lists), n)).as_py():
                raise DataDirError(f"n-gram counts: an order-{n} row has another length")
            flat = pc.index_in(pc.list_flatten(lists), value_set=value_set)
            flat = pc.fill_null(flat, vocab.unk).to_numpy(zero_copy_only=False)
            id_parts.append(flat.astype(np.int64).reshape(-1, n))
            for j in range(len(columns)):
                col_parts[j].append(batch.column(j + 1).to_numpy(zero_copy_only=False))
        if not id_parts:
            if required:
                raise DataDirError(f"n-gram counts: no rows of order {n}")
            continue
        yield n, np.concatenate(id_parts), [np.concatenate(c) for c in col_parts]
