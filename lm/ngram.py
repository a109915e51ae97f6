"""N-gram baselines from the pipeline's count tables (no re-counting of the corpus).

Tables: `lm.ngram_tables.CountTables` (the n-grams over the manifest vocabulary as sorted
int64 keys, adjusted counts, and the pipeline's statistics of pruned tables).

Models (every one scores `<bos> t1 .. tk <eos>` by predicting t1 .. tk and `<eos>`):
* `AddKUnigram`, `AddKBigram`: (c + k) / (total + k V).
* `KneserNey`: interpolated modified Kneser-Ney (Chen & Goodman) of any counted order, with
  continuation counts for lower orders (raw counts for n-grams that start with `<bos>`, which
  cannot be extended to the left), three discounts per order from the count-of-counts, and a
  fallback discount where those are degenerate (e.g. character unigrams). The lowest order
  interpolates with the uniform distribution over the vocabulary, so every token has mass.
  With pruned tables, the continuation counts and discounts are those taken before pruning,
  and the pruned n-grams' mass goes to their context's backoff weight. A model compiles to
  `beam_jobs.text.perplexity.NgramScorer`, which scores (here and on the pipeline's workers).

`python -m lm.ngram --data DIR` prints every baseline's validation perplexity, Kneser-Ney of
every counted order; `--save-model FILE` writes one for `beam_jobs.prepare --perplexity-model`.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

from beam_jobs.text.perplexity import NgramScorer
from lm.data import Vocab, iter_document_blocks, load_manifest, load_vocab, split_chars
from lm.errors import LMError, exit_with
from lm.files import write_json
from lm.ngram_tables import CountTables

FALLBACK_DISCOUNT = 0.5
__all__ = ["AddKBigram", "AddKUnigram", "CountTables", "KneserNey", "evaluate", "sample"]


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
    """(D1, D2, D3+) from adjusted counts (Chen & Goodman); falls back when degenerate."""
    return discounts_from_counts_of_counts([int((adjusted == c).sum()) for c in (1, 2, 3, 4)])


def discounts_from_counts_of_counts(hist) -> tuple[np.ndarray, bool]:
    """(D1, D2, D3+) from [n1, n2, n3, n4]; (fallback discounts, True) when degenerate."""
    n1, n2, n3, n4 = (int(h) for h in hist)
    if min(n1, n2, n3, n4) > 0:
        y = n1 / (n1 + 2 * n2)
        d = np.array([1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3])
        if all(0 < d[i] <= i + 1 for i in range(3)):
            return d, False
    y = n1 / (n1 + 2 * n2) if n1 > 0 and n2 > 0 else FALLBACK_DISCOUNT
    y = y if 0 < y < 1 else FALLBACK_DISCOUNT
    return np.array([y, y, y]), True


class KneserNey(NgramModel):
    """Interpolated modified Kneser-Ney of `order`, compiled to an `NgramScorer`."""

    def __init__(self, tables: CountTables, order: int | None = None):
        t = tables
        self.t, self.order = t, order or t.order
        if self.order > t.order or self.order < 1:
            raise ValueError(f"order {self.order}: the tables hold orders 1..{t.order}")
        self.name = f"kneser_ney_{self.order}"
        self.discounts, self.fallback = [None], [None]
        top, gamma = [None], [None]
        for n in range(1, self.order + 1):
            highest = n == self.order
            a = t.adjusted(n, highest)
            d, fallback = discounts_from_counts_of_counts(t.counts_histogram(n, highest, a))
            taken = np.minimum(np.where(a > 0, d[np.clip(a, 1, 3) - 1], 0.0), a)
            parent = np.zeros(len(a), dtype=np.int64) if n == 1 else t.parent(n)
            denom = t.denominators(n, a, highest)
            kept = np.bincount(parent, weights=a, minlength=len(denom))
            # the backoff mass: what the discounts took, and the pruned extensions' counts
            mass = np.bincount(parent, weights=taken, minlength=len(denom)) + (denom - kept)
            safe = np.where(denom > 0, denom, 1.0)
            top.append(np.where(denom[parent] > 0, (a - taken) / safe[parent], 0.0))
            gamma.append(np.where(denom > 0, mass / safe, 1.0))
            self.discounts.append(d)
            self.fallback.append(fallback)
        self.scorer = NgramScorer(t.V, t.bos, t.eos, t.unk, t.keys[: self.order + 1], top, gamma)

    def score(self, ids):
        return self.scorer.log_probs(ids)

    def distribution(self, context):
        t, s = self.t, self.scorer
        ctx = t.context_rows(list(context), self.order)
        p = np.full(t.V, 1.0 / t.V)
        for n in range(1, self.order + 1):
            c = ctx[n]
            if c < 0:
                continue
            p = s.gamma[n][c] * p
            if n == 1:
                p += s.top[1]
            else:
                lo, hi = np.searchsorted(t.keys[n], [c * t.V, (c + 1) * t.V])
                p[t.last(n)[lo:hi]] += s.top[n][lo:hi]
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


def baseline_specs(tables: CountTables, add_k: float = 1.0) -> list[tuple[str, callable]]:
    """(name, builder) of every baseline: add-k unigram and bigram, Kneser-Ney of every
    counted order. Built one at a time, so that only one model's arrays are held."""
    specs = [("add_k_unigram", lambda: AddKUnigram(tables, add_k))]
    if tables.order >= 2:
        specs.append(("add_k_bigram", lambda: AddKBigram(tables, add_k)))
    for n in range(1, tables.order + 1):
        specs.append((f"kneser_ney_{n}", lambda n=n: KneserNey(tables, n)))
    return specs


def build_baselines(tables: CountTables, add_k: float = 1.0) -> list[NgramModel]:
    return [build() for _, build in baseline_specs(tables, add_k)]


def describe_model(m: NgramModel) -> dict:
    if isinstance(m, KneserNey):
        return {
            "order": m.order,
            "discounts": [d.tolist() for d in m.discounts[1:]],
            "fallback_discount_orders": [n for n in range(1, m.order + 1) if m.fallback[n]],
            "pruned_tables": m.t.pruned,
        }
    return {"add_k": m.k}


def evaluate_tables(
    tables: CountTables, blocks: list[np.ndarray], bos: int, add_k: float = 1.0
) -> dict:
    """Every baseline of `tables` on `blocks`, each built, scored and dropped in turn."""
    result = {}
    for name, build in baseline_specs(tables, add_k):
        start = time.time()
        model = build()
        built = time.time()
        result[name] = {
            **evaluate([model], blocks, bos)[name],
            **describe_model(model),
            "build_seconds": built - start,
            "score_seconds": time.time() - built,
        }
        del model
    return result


def evaluate_baselines(
    data_dir: str, manifest: dict, vocab: Vocab, add_k: float = 1.0, split: str = "val"
) -> dict:
    """Every baseline's perplexity on the whole `split` (same tokens as the GRU's)."""
    tables = CountTables.from_parquet(data_dir, manifest, vocab)
    blocks = list(iter_document_blocks(data_dir, manifest, vocab, split))
    return evaluate_tables(tables, blocks, vocab.bos, add_k)


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
        "of every counted order) from the pipeline's count tables: perplexity on the whole "
        "validation split, samples, and a saved model for the pipeline's perplexity filter.",
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
        help="print a sample of up to N tokens from the highest-order Kneser-Ney",
    )
    ap.add_argument("--prompt", default="", help="prompt for --sample")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--save-model",
        metavar="FILE.npz",
        help="write Kneser-Ney of --model-order for beam_jobs.prepare "
        "--perplexity-model (numpy arrays and the vocabulary)",
    )
    ap.add_argument(
        "--model-order",
        type=int,
        default=None,
        help="order of the saved model (default: the highest counted)",
    )
    ap.add_argument("--no-eval", action="store_true", help="only --save-model")
    args = ap.parse_args(argv)
    try:
        manifest = load_manifest(args.data)
        vocab = load_vocab(args.data, manifest)
        start = time.time()
        tables = CountTables.from_parquet(args.data, manifest, vocab)
        if args.model_order is not None and not 1 <= args.model_order <= tables.order:
            raise LMError(
                f"--model-order {args.model_order}: the tables hold orders 1..{tables.order}"
            )
    except LMError as e:
        return exit_with(e)
    read = time.time() - start
    if args.save_model:
        model = KneserNey(tables, args.model_order)
        model.scorer.tokens = list(vocab.tokens)
        model.scorer.info = {
            "data": args.data,
            "order": model.order,
            "fingerprint": manifest.get("input", {}).get("fingerprint"),
        }
        model.scorer.save(args.save_model)
        print(f"saved {model.name} to {args.save_model}")
    if args.no_eval:
        return 0
    blocks = list(iter_document_blocks(args.data, manifest, vocab, args.split))
    result = evaluate_tables(tables, blocks, vocab.bos, args.add_k)
    print(
        f"vocabulary {len(vocab)}, counted order {tables.order}"
        f"{' (pruned tables)' if tables.pruned else ''}, {args.split} tokens "
        f"{next(iter(result.values()))['tokens']} (tables read in {read:.1f}s)"
    )
    chars = split_chars(args.data, manifest, args.split)  # bits/char: comparable across tokenizers
    print(f"{'model':<16} {'perplexity':>12} {'bits/char':>10} {'build s':>8} {'score s':>8}")
    for name, r in result.items():
        r["chars"], r["bits_per_char"] = chars, r["nll"] / math.log(2) / max(chars, 1)
        print(
            f"{name:<16} {r['perplexity']:>12.3f} {r['bits_per_char']:>10.3f} "
            f"{r['build_seconds']:>8.1f} {r['score_seconds']:>8.1f}"
        )
    if args.json:
        write_json(args.json, result)
    if args.sample:
        best = KneserNey(tables)
        print(
            f"\n{best.name} sample:\n{args.prompt}"
            f"{sample(best, vocab, args.prompt, args.sample, args.seed)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
