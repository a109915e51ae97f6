"""Whole-split, token-weighted evaluation of a recurrent LM.

Documents are spread over `lanes` parallel rows. Each lane reads its document in chunks of
`block_size` tokens and carries the GRU's hidden state from one chunk to the next; the state
is reset to zero where a new document starts. Every document `<bos> t1 .. tk <eos>` contributes
k+1 predictions (t1 .. tk and `<eos>`), each exactly once, so

    perplexity = exp(total NLL / predicted tokens),  bits/char = total NLL / ln 2 / characters.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import nullcontext

import numpy as np
import torch

from lm.data import IGNORE_INDEX


def lane_batches(
    documents: Iterable[np.ndarray], lanes: int, block_size: int, max_tokens: int | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (rows, x, y, fresh) for the lanes that hold a document: `rows` are their lane
    numbers, x and y have shape (len(rows), block_size) with padded targets IGNORE_INDEX, and
    fresh marks lanes that start a new document (reset their hidden state). Idle lanes are
    left out, so a long last document does not drag empty rows along.
    `max_tokens` stops taking new documents once that many targets have been handed out."""
    for rows, x, y, fresh, _, _ in placed_lane_batches(documents, lanes, block_size, max_tokens):
        yield rows, x, y, fresh


def placed_lane_batches(documents, lanes: int, block_size: int, max_tokens: int | None = None):
    """`lane_batches` with, per row, the document's number (in input order, counting the
    documents taken) and the position of its first target in that document."""
    docs = iter(documents)
    current: list[np.ndarray | None] = [None] * lanes
    pos = [0] * lanes
    number = [-1] * lanes
    handed, taken = 0, 0

    def next_doc():
        nonlocal handed, taken
        while max_tokens is None or handed < max_tokens:
            doc = next(docs, None)
            if doc is None:
                return None
            if len(doc) > 1:
                handed += len(doc) - 1
                taken += 1
                return doc
        return None

    for i in range(lanes):
        current[i] = next_doc()
        number[i] = taken - 1
    while True:
        rows = np.array([i for i, d in enumerate(current) if d is not None], dtype=np.int64)
        if not len(rows):
            return
        x = np.zeros((len(rows), block_size), dtype=np.int64)
        y = np.full((len(rows), block_size), IGNORE_INDEX, dtype=np.int64)
        fresh = np.zeros(len(rows), dtype=bool)
        docno, start = np.zeros(len(rows), np.int64), np.zeros(len(rows), np.int64)
        for r, i in enumerate(rows):
            doc, p = current[i], pos[i]
            fresh[r], docno[r], start[r] = p == 0, number[i], p
            n = min(block_size, len(doc) - 1 - p)
            x[r, :n] = doc[p : p + n]
            y[r, :n] = doc[p + 1 : p + n + 1]
            pos[i] = p + n
            if pos[i] >= len(doc) - 1:
                current[i], pos[i] = next_doc(), 0
                number[i] = taken - 1
        yield rows, x, y, fresh, docno, start


@torch.no_grad()
def evaluate(
    model,
    documents: Iterable[np.ndarray],
    device: str = "cpu",
    lanes: int = 64,
    block_size: int = 256,
    max_tokens: int | None = None,
    autocast=None,
    chars: int | None = None,
    token_log_probs: bool = False,
) -> dict:
    """NLL, perplexity (and bits per character when `chars` is given) over `documents`; with
    `token_log_probs`, also every prediction's log-probability in document order (the order
    of `beam_jobs.text.perplexity.NgramScorer.log_probs` over the same documents)."""
    was_training = model.training
    model.eval()
    cfg = model.config
    h = torch.zeros(cfg.layers, lanes, cfg.hidden, device=device)
    total, count = 0.0, 0
    per_doc: dict[int, np.ndarray] = {}
    for rows, x, y, fresh, docno, start in placed_lane_batches(
        documents, lanes, block_size, max_tokens
    ):
        rows_t = torch.from_numpy(rows).to(device)
        keep_state = torch.from_numpy(~fresh).to(device, torch.float32)[None, :, None]
        h_rows = (h[:, rows_t] * keep_state).contiguous()
        x = torch.from_numpy(x).to(device)
        y = torch.from_numpy(y).to(device).reshape(-1)
        with autocast or nullcontext():
            features, h_rows = model(x, h_rows)
        h[:, rows_t] = h_rows.float()
        keep = y != IGNORE_INDEX
        logp = model.target_log_probs(features.reshape(-1, features.shape[-1])[keep], y[keep])
        total -= float(logp.double().sum())
        count += int(keep.sum())
        if token_log_probs:
            place(per_doc, logp, keep.reshape(len(rows), -1), docno, start)
    model.train(was_training)
    result = {
        "nll": total,
        "tokens": count,
        "loss": total / max(count, 1),
        "perplexity": math.exp(total / max(count, 1)),
    }
    if token_log_probs:
        result["token_log_probs"] = (
            np.concatenate([per_doc[k] for k in sorted(per_doc)]) if per_doc else np.zeros(0)
        )
    if chars:
        result["chars"] = chars
        result["bits_per_char"] = total / math.log(2) / chars
    return result


def place(per_doc: dict, logp: torch.Tensor, keep: torch.Tensor, docno, start) -> None:
    """Store a batch's target log-probabilities at their documents' positions."""
    values = logp.double().cpu().numpy()
    lengths = keep.sum(1).cpu().numpy()
    offset = 0
    for r, n in enumerate(lengths.tolist()):
        d, s = int(docno[r]), int(start[r])
        if d not in per_doc:
            per_doc[d] = np.empty(0)
        if len(per_doc[d]) < s + n:
            per_doc[d] = np.concatenate([per_doc[d], np.empty(s + n - len(per_doc[d]))])
        per_doc[d][s : s + n] = values[offset : offset + n]
        offset += n
