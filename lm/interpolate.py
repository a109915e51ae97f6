"""GRU + Kneser-Ney: a linear mixture of their next-token distributions,

    p(w | h) = weight * p_gru(w | h) + (1 - weight) * p_kn(w | h),

with `weight` (the GRU's share) fitted by EM on a held-out slice of the *train* split
(`lm.holdout`: the GRU never trained on it, and the Kneser-Ney model it is fitted against is
built from the train counts minus the slice's n-grams: exactly for unpruned tables, the raw
counts only for pruned ones), never on validation text. Both models
give normalized distributions over the same vocabulary, so the mixture of the target's two
probabilities is the mixture's probability of the target: the fit and the validation score
need only each model's log-probability of every target. The Kneser-Ney order is chosen the
same way, by the held-out slice; the validation split is scored once, with the chosen order
built from the full train counts (the model the baselines report).
"""

from __future__ import annotations

import math

import numpy as np

from lm.ngram import KneserNey
from lm.ngram_tables import CountTables

EM_ITERATIONS = 200


def mixed_nll(gru: np.ndarray, kn: np.ndarray, weight: float) -> float:
    """Total NLL of the mixture over aligned target log-probabilities."""
    w = min(max(weight, 1e-12), 1 - 1e-12)
    return float(-np.logaddexp(math.log(w) + gru, math.log(1 - w) + kn).sum())


def fit_weight(gru: np.ndarray, kn: np.ndarray, iterations: int = EM_ITERATIONS) -> float:
    """The GRU's weight that maximizes the mixture's likelihood of the targets (EM: the NLL is
    convex in the weight and every step lowers it)."""
    if len(gru) != len(kn):
        raise ValueError(f"{len(gru)} GRU and {len(kn)} n-gram log-probabilities")
    if not len(gru):
        return 0.5
    diff = np.clip(kn - gru, -700, 700)  # log(p_kn / p_gru)
    w = 0.5
    for _ in range(iterations):
        # posterior of the GRU component per target: w p_g / (w p_g + (1-w) p_k)
        post = w / (w + (1 - w) * np.exp(diff))
        new = float(post.mean())
        if abs(new - w) < 1e-7:
            return new
        w = new
    return w


def without_documents(tables: CountTables, docs: list[np.ndarray]) -> tuple[CountTables, bool]:
    """The tables minus the n-grams of `docs` (`<bos> .. <eos>` ids), and whether that was
    exact. Of pruned tables only the raw counts can be corrected: the pipeline's continuation
    counts, pruned mass and counts of counts are kept as counted (False)."""
    if not docs:
        return tables, True
    stream = np.concatenate(docs).astype(np.int64)
    rows = tables.ending_rows(stream, tables.order)  # n-grams across documents are absent
    out = CountTables(tables.V, tables.bos, tables.eos, tables.unk)
    out.counts[1] = tables.counts[1] - np.bincount(stream, minlength=tables.V)
    renumber = np.arange(tables.V)  # old row -> new row of the previous order
    kept = {1: np.ones(tables.V, dtype=bool)}
    for n in range(2, tables.order + 1):
        found = rows[n][rows[n] >= 0]
        counts = tables.counts[n] - np.bincount(found, minlength=len(tables.counts[n]))
        keep = kept[n] = counts > 0  # an extension of a vanished n-gram vanishes with it
        parent = renumber[tables.parent(n)[keep]]
        out.keys.append(parent * tables.V + tables.last(n)[keep])
        out.counts.append(counts[keep])
        renumber = np.cumsum(keep) - 1
    if not tables.pruned:
        return out, True
    out.pruned, out.counts_of_counts = True, tables.counts_of_counts
    for n in range(1, tables.order + 1):
        out.continuation[n] = tables.continuation[n][kept[n]]
        out.pruned_mass[n] = tables.pruned_mass[n][kept[n]]
    return out, False


def interpolate(
    tables: CountTables,
    holdout_docs: list[np.ndarray],
    holdout_gru: np.ndarray,
    val_blocks: list[np.ndarray],
    val_gru: np.ndarray,
) -> dict:
    """Fit the weight and the order on the held-out slice; the mixture on validation.
    `holdout_gru` / `val_gru`: the GRU's log-probability of every target of those documents
    (`lm.evaluate.evaluate(..., token_log_probs=True)`)."""
    fit_tables, exact = without_documents(tables, holdout_docs)
    stream = np.concatenate(holdout_docs).astype(np.int64)
    by_order = {}
    for n in range(1, tables.order + 1):
        kn = KneserNey(fit_tables, n).score(stream)
        w = fit_weight(holdout_gru, kn)
        by_order[f"kneser_ney_{n}"] = {
            "weight": w,
            "holdout_perplexity": math.exp(mixed_nll(holdout_gru, kn, w) / len(kn)),
            "holdout_kn_perplexity": math.exp(-kn.sum() / len(kn)),
        }
    best = min(by_order, key=lambda k: by_order[k]["holdout_perplexity"])
    model = KneserNey(tables, int(best.rsplit("_", 1)[1]))
    kn_val = np.concatenate([model.score(b) for b in val_blocks])
    if len(kn_val) != len(val_gru):
        raise ValueError(f"{len(val_gru)} GRU and {len(kn_val)} n-gram validation targets")
    w = by_order[best]["weight"]
    return {
        "with": best,
        "weight": w,
        "weight_is": "the GRU's share: p = weight * p_gru + (1 - weight) * p_kn",
        "val_perplexity": math.exp(mixed_nll(val_gru, kn_val, w) / len(kn_val)),
        "val_tokens": len(kn_val),
        "fitted_on": "held-out slice of the train split (lm.holdout), never validation",
        "holdout_tokens": len(holdout_gru),
        "holdout_documents": len(holdout_docs),
        "holdout_removed_from_counts": exact,
        "by_order": by_order,
    }
