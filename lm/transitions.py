"""Transition maps: the distribution of the next character after a given character.

* `bigram_rows`: P(next | prev) from the pipeline's order-2 counts (train split, `<bos>`/`<eos>`
  included, out-of-vocabulary characters merged into `<unk>`), each row normalized over the
  whole vocabulary; a character that never has a successor gets a row of NaN.
* `gru_rows_after_bos`: the GRU's next-character distribution after the two-token context
  `<bos> c` (c as the first character of a document): the model's "bigram" with no history.
* `gru_rows_averaged`: the GRU's next-character distribution after each occurrence of c in real
  text (whole documents, hidden state carried), averaged over those occurrences. This is the
  quantity comparable to the bigram counts, which also average over every context of c.
* `square_map`: the rows restricted to the chosen characters as columns, plus a last column
  "other" with the remaining mass, so every displayed row still sums to 1.

All functions are pure (no files, no plotting); `lm.interpret` draws and prints them.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch


def most_frequent(tables, vocab, top: int) -> list[int]:
    """Ids of the `top` most frequent ordinary tokens in the unigram counts."""
    unigram = tables.counts[1].astype(float).copy()
    unigram[[vocab.unk, vocab.bos, vocab.eos]] = -1
    ids = np.argsort(-unigram, kind="stable")[:top]
    return [int(i) for i in ids if unigram[i] > 0]


def chosen_ids(vocab, chars: Iterable[str]) -> list[int]:
    """Ids of the given tokens; unknown ones raise ValueError naming them."""
    missing = [c for c in chars if c not in vocab.index]
    if missing:
        raise ValueError(f"not in the vocabulary: {missing}")
    return [vocab.index[c] for c in chars]


def bigram_rows(tables, ids: list[int]) -> np.ndarray:
    """(len(ids), V): P(next | prev) for each prev in `ids`, from the order-2 counts."""
    V = tables.V
    out = np.full((len(ids), V), np.nan)
    keys, counts, last = tables.keys[2], tables.counts[2], tables.last(2)
    for r, a in enumerate(ids):
        lo, hi = np.searchsorted(keys, [a * V, (a + 1) * V])
        total = counts[lo:hi].sum()
        if total > 0:
            row = np.zeros(V)
            np.add.at(row, last[lo:hi], counts[lo:hi])
            out[r] = row / total
    return out


@torch.no_grad()
def gru_rows_after_bos(model, vocab, ids: list[int]) -> np.ndarray:
    """(len(ids), V): p(next | <bos> c) for each c in `ids`."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    x = torch.tensor([[vocab.bos, i] for i in ids], device=device)
    features, _ = model(x)
    probs = model.log_probs(features[:, -1]).double().exp().cpu().numpy()
    model.train(was)
    return probs


@torch.no_grad()
def gru_rows_averaged(
    model,
    documents: Iterable[np.ndarray],
    ids: list[int],
    max_tokens: int = 100_000,
    chunk: int = 512,
) -> tuple[np.ndarray, np.ndarray]:
    """(rows (len(ids), V), occurrences (len(ids),)): the mean of p(next | history) over every
    position of `documents` (`<bos> .. <eos>` id arrays, read whole with the hidden state
    carried) whose current token is in `ids`, over at most `max_tokens` positions. Rows of
    tokens that never occur are NaN."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    V = model.config.vocab_size
    row_of = np.full(V, -1, dtype=np.int64)
    row_of[np.asarray(ids, dtype=np.int64)] = np.arange(len(ids))
    sums = torch.zeros(len(ids), V, dtype=torch.float64)
    seen = np.zeros(len(ids), dtype=np.int64)
    used = 0
    for doc in documents:
        if used >= max_tokens:
            break
        doc = doc[:-1][: max_tokens - used]  # inputs: every token but the final <eos>
        used += len(doc)
        h = None
        for start in range(0, len(doc), chunk):
            x = doc[start : start + chunk]
            features, h = model(torch.from_numpy(x.astype(np.int64))[None].to(device), h)
            rows = row_of[x]
            keep = rows >= 0
            if not keep.any():
                continue
            p = model.log_probs(features[0][torch.from_numpy(keep).to(device)]).double().exp()
            sums.index_add_(0, torch.from_numpy(rows[keep]), p.cpu())
            seen += np.bincount(rows[keep], minlength=len(ids))
    model.train(was)
    out = sums.numpy() / np.maximum(seen, 1)[:, None]
    out[seen == 0] = np.nan
    return out, seen


def square_map(rows: np.ndarray, ids: list[int]) -> np.ndarray:
    """(len(ids), len(ids) + 1): the columns of `ids`, then the mass of every other token."""
    sub = rows[:, ids]
    return np.concatenate([sub, 1.0 - sub.sum(axis=1, keepdims=True)], axis=1)


def top_continuations(row: np.ndarray, vocab, k: int = 5) -> list[tuple[str, float]]:
    """The `k` most probable next tokens of one row, as (token, probability)."""
    if np.isnan(row).any():
        return []
    order = np.argsort(-row, kind="stable")[:k]
    return [(vocab.tokens[i], float(row[i])) for i in order]


def total_variation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row: half the L1 distance between two distributions (0: equal, 1: disjoint)."""
    return 0.5 * np.abs(a - b).sum(axis=1)
