"""Perplexity of documents under an n-gram model, numpy only (the pipeline's workers have no
torch): the scorer of `--perplexity-model` and of `lm.ngram`'s Kneser-Ney models.

An interpolated Kneser-Ney model of order K is compiled (by `lm.ngram.KneserNey`) into, per
level n = 1..K: the sorted int64 keys of its n-grams (`row(prefix) * V + last id`, order 1
dense), `top[n][row]` = max(a - D, 0) / denominator(context), and `gamma[n][context]`, the
context's backoff weight (1 where the context has no extension). Then

    p_0(w) = 1 / V,   p_n(w | ctx) = top[n][ctx w] + gamma[n][ctx] * p_{n-1}(w | shorter ctx)

where an unseen context leaves p unchanged, so scoring a whole stream is one `searchsorted`
per level. `lm.ngram --save-model FILE` writes it as `.npz` with the vocabulary; `load` reads it
back. Documents are scored as `<bos> t1 … tk <eos>` (k + 1 predictions), characters outside
the vocabulary as `<unk>`, exactly as `lm` scores its validation split.
"""

from __future__ import annotations

import json
import math

import numpy as np

from beam_jobs.text.codepoints import code_points

FORMAT = "beam_jobs.ngram_scorer/1"


def lookup_rows(keys: list, vocab_size: int, n: int, wanted: np.ndarray) -> np.ndarray:
    """Row of each wanted key in the order-n table (`keys[n]`: sorted int64 keys; order 1 is
    dense, rows = ids), -1 where absent (negative keys stay absent)."""
    if n == 1:
        return np.where((wanted >= 0) & (wanted < vocab_size), wanted, -1)
    table = keys[n]
    if not len(table):
        return np.full(len(wanted), -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(table, wanted), len(table) - 1)
    return np.where((wanted >= 0) & (table[pos] == wanted), pos, -1)


class NgramScorer:
    def __init__(
        self,
        vocab_size: int,
        bos: int,
        eos: int,
        unk: int,
        keys: list,
        top: list,
        gamma: list,
        tokens: list[str] | None = None,
        info: dict | None = None,
    ):
        """`keys`, `top`, `gamma` are indexed by level 1..K (index 0 unused; keys[1] None)."""
        self.V, self.bos, self.eos, self.unk = vocab_size, bos, eos, unk
        self.keys, self.top, self.gamma = keys, top, gamma
        self.tokens, self.info = tokens, info or {}
        self._codes = None

    @property
    def order(self) -> int:
        return len(self.top) - 1

    def lookup(self, n: int, keys: np.ndarray) -> np.ndarray:
        return lookup_rows(self.keys, self.V, n, keys)

    def log_probs(self, ids: np.ndarray) -> np.ndarray:
        """log p of every position of a stream of whole documents (`<bos> … <eos>` each) whose
        token is not `<bos>`, given the preceding tokens of its document."""
        ids = np.asarray(ids, dtype=np.int64)
        pred = np.flatnonzero(ids != self.bos)
        p = np.full(len(pred), 1.0 / self.V)
        prev_rows = None
        for n in range(1, self.order + 1):
            if n == 1:
                rows, ctx = ids, np.zeros(len(pred), dtype=np.int64)
            else:
                before = np.full(len(ids), -1, dtype=np.int64)
                before[1:] = prev_rows[:-1]
                rows = self.lookup(n, np.where(before >= 0, before * self.V + ids, -1))
                ctx = prev_rows[pred - 1]
            row = rows[pred]
            top = np.where(row >= 0, self.top[n][np.maximum(row, 0)], 0.0)
            p = np.where(ctx >= 0, top + self.gamma[n][np.maximum(ctx, 0)] * p, p)
            prev_rows = rows
        return np.log(p)

    # --- text
    def encode_document(self, text: str) -> np.ndarray:
        """`<bos> ids <eos>` of `text` (character vocabularies; others → `<unk>`)."""
        if self._codes is None:
            self._codes = _char_index(self.tokens)
        codes, ids = self._codes
        cp = code_points(text).astype(np.int64)
        pos = np.minimum(np.searchsorted(codes, cp), max(len(codes) - 1, 0))
        found = (codes[pos] == cp) if len(codes) else np.zeros(len(cp), bool)
        body = np.where(found, ids[pos], self.unk)
        return np.concatenate(([self.bos], body, [self.eos])).astype(np.int64)

    def document_nll(self, text: str) -> tuple[float, int]:
        """(total negative log-likelihood, predicted tokens) of one document."""
        logp = self.log_probs(self.encode_document(text))
        return float(-logp.sum()), len(logp)

    def perplexity(self, text: str) -> float:
        nll, n = self.document_nll(text)
        return math.exp(nll / n)

    # --- files
    def save(self, path: str, dtype=np.float32) -> None:
        meta = {
            "format": FORMAT,
            "V": self.V,
            "bos": self.bos,
            "eos": self.eos,
            "unk": self.unk,
            "order": self.order,
            "tokens": self.tokens,
            "info": self.info,
        }
        arrays = {"meta": np.frombuffer(json.dumps(meta, ensure_ascii=False).encode(), np.uint8)}
        for n in range(1, self.order + 1):
            if n > 1:
                arrays[f"keys_{n}"] = self.keys[n]
            arrays[f"top_{n}"] = self.top[n].astype(dtype)
            arrays[f"gamma_{n}"] = self.gamma[n].astype(dtype)
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path, name: str | None = None) -> NgramScorer:
        """The scorer saved at `path` (a path or an open binary file named `name`);
        ValueError (one line) for a file that is not a saved scorer."""
        path_arg, path = path, name or path
        try:
            with np.load(path_arg, allow_pickle=False) as z:
                meta = json.loads(z["meta"].tobytes().decode())
                if meta.get("format") != FORMAT:
                    raise ValueError(f"{path}: not an n-gram model file ({meta.get('format')})")
                order = meta["order"]
                keys = [None, None] + [z[f"keys_{n}"] for n in range(2, order + 1)]
                top = [None] + [z[f"top_{n}"].astype(np.float64) for n in range(1, order + 1)]
                gamma = [None] + [z[f"gamma_{n}"].astype(np.float64) for n in range(1, order + 1)]
        except (OSError, KeyError, EOFError, json.JSONDecodeError, ValueError) as e:
            if isinstance(e, ValueError) and str(e).startswith(str(path)):
                raise
            raise ValueError(f"{path}: unreadable n-gram model ({e})") from None
        return cls(
            meta["V"],
            meta["bos"],
            meta["eos"],
            meta["unk"],
            keys,
            top,
            gamma,
            meta["tokens"],
            meta.get("info"),
        )


def _char_index(tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted code points of the single-character tokens, and their ids."""
    pairs = sorted((ord(t), i) for i, t in enumerate(tokens) if len(t) == 1)
    return (
        np.array([c for c, _ in pairs], dtype=np.int64),
        np.array([i for _, i in pairs], dtype=np.int64),
    )
