"""N-gram baselines from the pipeline's count tables (no re-counting of the corpus).

Tables: `CountTables` holds, per order n, the distinct n-grams over the *manifest vocabulary*
(out-of-vocabulary tokens mapped to `<unk>` and their counts merged). An n-gram is stored as
the integer key `prefix_index * V + last_id`, where `prefix_index` is the row of its first n-1
tokens in the order n-1 table (order 1 is dense: row = token id), so every table is a sorted
int64 array and lookups are `np.searchsorted`, vectorized over a whole token stream.

Models (every one scores `<bos> t1 .. tk <eos>` by predicting t1 .. tk and `<eos>`):
* `AddKUnigram`, `AddKBigram`: (c + k) / (total + k V).
* `KneserNey`: interpolated modified Kneser-Ney (Chen & Goodman) up to the counted order, with
  continuation counts for lower orders (raw counts for n-grams that start with `<bos>`, which
  cannot be extended to the left), three discounts per order from the count-of-counts, and a
  fallback discount where those are degenerate (e.g. character unigrams). The lowest order
  interpolates with the uniform distribution over the vocabulary, so every token has mass.

`python -m lm.ngram --data DIR` prints every baseline's validation perplexity.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from lm.data import Vocab, iter_document_blocks, load_manifest, load_vocab, split_chars
from lm.errors import DataDirError, LMError, exit_with
from lm.files import write_json

FALLBACK_DISCOUNT = 0.5


class CountTables:
    def __init__(self, vocab_size: int, bos: int, eos: int, unk: int):
        self.V, self.bos, self.eos, self.unk = vocab_size, bos, eos, unk
        self.keys: list[np.ndarray | None] = [None, np.arange(vocab_size, dtype=np.int64)]
        self.counts: list[np.ndarray | None] = [None, np.zeros(vocab_size, dtype=np.int64)]

    @property
    def order(self) -> int:
        return len(self.keys) - 1

    def lookup(self, n: int, keys: np.ndarray) -> np.ndarray:
        """Row of each key in the order-n table, -1 where absent (keys < 0 stay absent)."""
        if n == 1:
            return np.where((keys >= 0) & (keys < self.V), keys, -1)
        table = self.keys[n]
        pos = np.searchsorted(table, keys)
        pos = np.minimum(pos, len(table) - 1) if len(table) else pos * 0
        found = (keys >= 0) & (len(table) > 0)
        if len(table):
            found &= table[pos] == keys
        return np.where(found, pos, -1)

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
        idx = ids[:, 0].astype(np.int64)
        for k in range(1, n - 1):
            idx = self.lookup(k + 1, idx * self.V + ids[:, k])
            if (idx < 0).any():
                raise DataDirError(
                    f"n-gram counts are inconsistent: an order-{n} n-gram's "
                    f"prefix is missing from order {k + 1}"
                )
        keys = idx * self.V + ids[:, n - 1]
        uniq, inverse = np.unique(keys, return_inverse=True)
        merged = np.bincount(inverse, weights=counts, minlength=len(uniq))
        self.keys.append(uniq)
        self.counts.append(np.rint(merged).astype(np.int64))

    @classmethod
    def from_parquet(
        cls, data_dir: str, manifest: dict, vocab: Vocab, max_order: int | None = None
    ) -> CountTables:
        """Read `ngrams/` with pyarrow, batch by batch, mapping tokens to vocabulary ids."""
        order = (
            manifest["ngrams"]["order"]
            if max_order is None
            else min(max_order, manifest["ngrams"]["order"])
        )
        tables = cls(len(vocab), vocab.bos, vocab.eos, vocab.unk)
        paths = [f"{data_dir}/{p}" for p in manifest["ngrams"]["shards"]]
        dataset = ds.dataset(paths, format="parquet")
        value_set = pa.array(vocab.tokens)
        for n in range(1, order + 1):
            id_parts, count_parts = [], []
            scanner = dataset.scanner(columns=["ngram", "count"], filter=ds.field("order") == n)
            for batch in scanner.to_batches():
                if batch.num_rows == 0:
                    continue
                lists = batch.column(0)
                if pc.any(pc.not_equal(pc.list_value_length(lists), n)).as_py():
                    raise DataDirError(f"n-gram counts: an order-{n} row has another length")
                flat = pc.index_in(pc.list_flatten(lists), value_set=value_set)
                flat = pc.fill_null(flat, vocab.unk).to_numpy(zero_copy_only=False)
                id_parts.append(flat.astype(np.int64).reshape(-1, n))
                count_parts.append(batch.column(1).to_numpy(zero_copy_only=False))
            if not id_parts:
                raise DataDirError(f"n-gram counts: no rows of order {n}")
            tables.add_order(n, np.concatenate(id_parts), np.concatenate(count_parts))
        return tables

    def parent(self, n: int) -> np.ndarray:
        return self.keys[n] // self.V

    def last(self, n: int) -> np.ndarray:
        return self.keys[n] % self.V

    def suffix_rows(self, n: int) -> np.ndarray:
        """For each order-n n-gram, the row of its last n-1 tokens in the order n-1 table."""
        if n == 2:
            return self.last(2)
        prev = self.suffix_rows(n - 1)[self.parent(n)]
        rows = self.lookup(n - 1, prev * self.V + self.last(n))
        if (rows < 0).any():
            raise DataDirError(f"n-gram counts are inconsistent: a suffix of order {n} is missing")
        return rows

    def first_token(self, n: int) -> np.ndarray:
        first = np.arange(self.V)
        for k in range(2, n + 1):
            first = first[self.parent(k)]
        return first

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
            row = context[-(n - 1)]
            for k in range(2, n):
                row = (
                    int(self.lookup(k, np.array([row * self.V + context[-(n - 1) + k - 1]]))[0])
                    if row >= 0
                    else -1
                )
            ctx.append(row)
        return ctx


class NgramModel:
    name = "ngram"
    order = 1

    def score(self, ids: np.ndarray) -> np.ndarray:
        """Log-probabilities of every position of a stream of whole documents whose token is
        not `<bos>` (each given its preceding tokens in the same document)."""
        raise NotImplementedError

    def distribution(self, context: list[int]) -> np.ndarray:
        """P(w | context) for every w in the vocabulary (context starts with `<bos>`)."""
        raise NotImplementedError


class AddKUnigram(NgramModel):
    def __init__(self, tables: CountTables, k: float = 1.0):
        self.k, self.name = k, "add_k_unigram"
        counts = tables.counts[1].astype(np.float64).copy()
        counts[tables.bos] = 0.0  # never predicted
        self.p = (counts + k) / (counts.sum() + k * tables.V)
        self.bos = tables.bos

    def score(self, ids):
        return np.log(self.p[ids[ids != self.bos]])

    def distribution(self, context):
        return self.p.copy()


class AddKBigram(NgramModel):
    order = 2

    def __init__(self, tables: CountTables, k: float = 1.0):
        self.t, self.k, self.name = tables, k, "add_k_bigram"
        self.row_total = np.bincount(tables.parent(2), weights=tables.counts[2], minlength=tables.V)

    def score(self, ids):
        t, pred = self.t, np.flatnonzero(ids != self.t.bos)
        prev = ids[pred - 1].astype(np.int64)
        rows = t.lookup(2, prev * t.V + ids[pred])
        c = np.where(rows >= 0, t.counts[2][np.maximum(rows, 0)], 0)
        return np.log((c + self.k) / (self.row_total[prev] + self.k * t.V))

    def distribution(self, context):
        t, prev = self.t, context[-1]
        lo, hi = np.searchsorted(t.keys[2], [prev * t.V, (prev + 1) * t.V])
        c = np.zeros(t.V)
        c[t.last(2)[lo:hi]] = t.counts[2][lo:hi]
        return (c + self.k) / (self.row_total[prev] + self.k * t.V)


def modified_kn_discounts(adjusted: np.ndarray) -> tuple[np.ndarray, bool]:
    """(D1, D2, D3+) from count-of-counts (Chen & Goodman); falls back when degenerate."""
    n1, n2, n3, n4 = (int((adjusted == c).sum()) for c in (1, 2, 3, 4))
    if min(n1, n2, n3, n4) > 0:
        y = n1 / (n1 + 2 * n2)
        d = np.array([1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3])
        if all(0 < d[i] <= i + 1 for i in range(3)):
            return d, False
    y = n1 / (n1 + 2 * n2) if n1 > 0 and n2 > 0 else FALLBACK_DISCOUNT
    y = y if 0 < y < 1 else FALLBACK_DISCOUNT
    return np.array([y, y, y]), True


class KneserNey(NgramModel):
    def __init__(self, tables: CountTables, order: int | None = None):
        t = tables
        self.t, self.order = t, order or t.order
        if self.order > t.order or self.order < 1:
            raise ValueError(f"order {self.order}: the tables hold orders 1..{t.order}")
        self.name = f"kneser_ney_{self.order}"
        self.adjusted, self.discounts, self.fallback = [None], [None], [None]
        self.denominator, self.backoff = [None], [None]
        for n in range(1, self.order + 1):
            if n == self.order:
                a = t.counts[n].copy()
            else:  # continuation counts: distinct left extensions
                a = np.bincount(t.suffix_rows(n + 1), minlength=len(t.counts[n])).astype(np.int64)
                starts_bos = t.first_token(n) == t.bos
                a[starts_bos] = t.counts[n][starts_bos]
            if n == 1:
                a[t.bos] = 0
            d, fallback = modified_kn_discounts(a[a > 0])
            taken = np.where(a > 0, d[np.minimum(a, 3) - 1], 0.0)
            taken = np.minimum(taken, a)
            contexts = 1 if n == 1 else len(t.counts[n - 1])
            parent = np.zeros(len(a), dtype=np.int64) if n == 1 else t.parent(n)
            denom = np.bincount(parent, weights=a, minlength=contexts)
            mass = np.bincount(parent, weights=taken, minlength=contexts)
            self.adjusted.append(a)
            self.discounts.append(d)
            self.fallback.append(fallback)
            self.denominator.append(denom)
            self.backoff.append(np.divide(mass, denom, out=np.zeros_like(mass), where=denom > 0))

    def _discounted(self, n: int, a: np.ndarray) -> np.ndarray:
        d = self.discounts[n]
        return np.where(a > 0, np.maximum(a - d[np.minimum(np.maximum(a, 1), 3) - 1], 0.0), 0.0)

    def score(self, ids):
        t = self.t
        pred = np.flatnonzero(ids != t.bos)
        rows = t.ending_rows(ids, self.order)
        p = np.full(len(pred), 1.0 / t.V)
        for n in range(1, self.order + 1):
            if n == 1:
                ctx = np.zeros(len(pred), dtype=np.int64)
            else:
                ctx = rows[n - 1][pred - 1]
            safe = np.maximum(ctx, 0)
            denom = self.denominator[n][safe]
            valid = (ctx >= 0) & (denom > 0)
            row = rows[n][pred]
            a = np.where(row >= 0, self.adjusted[n][np.maximum(row, 0)], 0)
            top = self._discounted(n, a)
            with np.errstate(divide="ignore", invalid="ignore"):
                new = top / denom + self.backoff[n][safe] * p
            p = np.where(valid, new, p)
        return np.log(p)

    def distribution(self, context):
        t = self.t
        ctx = t.context_rows(list(context), self.order)
        p = np.full(t.V, 1.0 / t.V)
        for n in range(1, self.order + 1):
            c = ctx[n]
            if c < 0 or self.denominator[n][c] <= 0:
                continue
            a = np.zeros(t.V, dtype=np.int64)
            if n == 1:
                a[:] = self.adjusted[1]
            else:
                lo, hi = np.searchsorted(t.keys[n], [c * t.V, (c + 1) * t.V])
                a[t.last(n)[lo:hi]] = self.adjusted[n][lo:hi]
            p = self._discounted(n, a) / self.denominator[n][c] + self.backoff[n][c] * p
        return p


def evaluate(models: list[NgramModel], blocks, bos: int) -> dict:
    """Token-weighted NLL and perplexity of each model over a stream of document blocks."""
    nll = {m.name: 0.0 for m in models}
    tokens = 0
    for ids in blocks:
        tokens += int((ids != bos).sum())
        for m in models:
            nll[m.name] -= float(m.score(ids).sum())
    return {
        name: {"nll": v, "tokens": tokens, "perplexity": math.exp(v / max(tokens, 1))}
        for name, v in nll.items()
    }


def build_baselines(
    tables: CountTables, add_k: float = 1.0, kn_orders: list[int] | None = None
) -> list[NgramModel]:
    models: list[NgramModel] = [AddKUnigram(tables, add_k)]
    if tables.order >= 2:
        models.append(AddKBigram(tables, add_k))
    for n in kn_orders or range(2, tables.order + 1):
        models.append(KneserNey(tables, n))
    return models


def evaluate_baselines(
    data_dir: str, manifest: dict, vocab: Vocab, add_k: float = 1.0, split: str = "val"
) -> dict:
    """Every baseline's perplexity on the whole `split` (same tokens as the GRU's)."""
    tables = CountTables.from_parquet(data_dir, manifest, vocab)
    models = build_baselines(tables, add_k)
    result = evaluate(models, iter_document_blocks(data_dir, manifest, vocab, split), vocab.bos)
    for m in models:
        result[m.name]["add_k" if "add_k" in m.name else "order"] = (
            m.k if "add_k" in m.name else m.order
        )
        if isinstance(m, KneserNey):
            result[m.name]["discounts"] = [d.tolist() for d in m.discounts[1:]]
            result[m.name]["fallback_discount_orders"] = [
                n for n in range(1, m.order + 1) if m.fallback[n]
            ]
    return result


def sample(
    model: NgramModel,
    vocab: Vocab,
    prompt: str = "",
    max_tokens: int = 200,
    seed: int = 0,
    temperature: float = 1.0,
) -> str:
    """Sample a continuation of `prompt` (stops at `<eos>`)."""
    rng = np.random.default_rng(seed)
    context = [vocab.bos, *vocab.encode(prompt).tolist()]
    out = []
    for _ in range(max_tokens):
        p = model.distribution(context)
        p[vocab.bos] = 0.0
        if temperature != 1.0:
            p = np.power(p, 1.0 / temperature)
        nxt = int(rng.choice(len(p), p=p / p.sum()))
        if nxt == vocab.eos:
            break
        context.append(nxt)
        out.append(nxt)
    return vocab.decode(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m lm.ngram",
        description="N-gram baselines (add-k unigram/bigram, interpolated modified Kneser-Ney "
        "up to the counted order) from the pipeline's count tables: perplexity on "
        "the whole validation split, and samples.",
    )
    ap.add_argument("--data", required=True, help="pipeline output directory")
    ap.add_argument("--split", default="val", choices=("val", "train"))
    ap.add_argument("--add-k", type=float, default=1.0, help="k of the add-k models")
    ap.add_argument("--json", help="also write the results to this JSON file")
    ap.add_argument(
        "--sample",
        type=int,
        default=0,
        metavar="N",
        help="print a sample of up to N tokens from the best Kneser-Ney model",
    )
    ap.add_argument("--prompt", default="", help="prompt for --sample")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        manifest = load_manifest(args.data)
        vocab = load_vocab(args.data, manifest)
        start = time.time()
        tables = CountTables.from_parquet(args.data, manifest, vocab)
    except LMError as e:
        return exit_with(e)
    models = build_baselines(tables, args.add_k)
    built = time.time()
    result = evaluate(
        models, iter_document_blocks(args.data, manifest, vocab, args.split), vocab.bos
    )
    print(
        f"vocabulary {len(vocab)}, counted order {tables.order}, {args.split} tokens "
        f"{next(iter(result.values()))['tokens']} (tables {built - start:.1f}s, "
        f"scoring {time.time() - built:.1f}s)"
    )
    chars = split_chars(args.data, manifest, args.split)  # bits/char: comparable across tokenizers
    print(f"{'model':<16} {'perplexity':>12} {'bits/char':>10}")
    for name, r in result.items():
        r["chars"], r["bits_per_char"] = chars, r["nll"] / math.log(2) / max(chars, 1)
        print(f"{name:<16} {r['perplexity']:>12.3f} {r['bits_per_char']:>10.3f}")
    if args.json:
        write_json(args.json, result)
    if args.sample:
        best = models[-1]
        print(
            f"\n{best.name} sample:\n{args.prompt}"
            f"{sample(best, vocab, args.prompt, args.sample, args.seed)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
