"""Mixtures of data directories (domains) for continued pretraining.

* `parse_domain_spec` reads `--data NAME=DIR:WEIGHT` (or `NAME=DIR` when the weights come from
  `--mix-temperature`).
* `temperature_weights` turns domain sizes into weights p_i ∝ size_i^(1/T): T = 1 samples in
  proportion to size, large T approaches uniform.
* `MixtureSampler` says which domain the batch of training step `s` comes from. Step s draws
  one uniform number from a counter-based stream keyed by (seed, s // BLOCK), so the choice
  depends on the seed and the step only: a resumed run needs no sampler state beyond its step
  count, and every step picks domain i with probability exactly w_i (proportions are exact in
  expectation; over n steps the count of domain i is Binomial(n, w_i)). A weight of 0 means the
  domain is evaluated but never trained on.
* `union_vocab` merges the domains' `vocab.json` files into one model vocabulary.
"""

from __future__ import annotations

import math
import re

import numpy as np

from beam_jobs.tokens.tokenizers import SPECIAL_TOKENS
from lm.errors import MixtureError  # defined with lm's other errors, raised here

BLOCK = 4096
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def parse_domain_spec(spec: str) -> tuple[str, str, float | None]:
    """`NAME=DIR:WEIGHT` -> (name, dir, weight); `NAME=DIR` -> (name, dir, None).

    The weight is the text after the last `:` when it parses as a number, so directories
    containing `:` still work as long as a weight is given."""
    if "=" not in spec:
        raise MixtureError(
            f"--data {spec!r}: with several directories each must be "
            "NAME=DIR:WEIGHT (or NAME=DIR with --mix-temperature)"
        )
    name, rest = spec.split("=", 1)
    if not _NAME.match(name):
        raise MixtureError(
            f"--data {spec!r}: domain name {name!r} must be letters, digits, '_', '.' or '-'"
        )
    weight = None
    head, sep, tail = rest.rpartition(":")
    if sep:
        try:
            weight = float(tail)
            rest = head
        except ValueError:
            weight = None
    if not rest:
        raise MixtureError(f"--data {spec!r}: no directory")
    if weight is not None and (not math.isfinite(weight) or weight < 0):
        raise MixtureError(f"--data {spec!r}: weight must be a finite number >= 0")
    return name, rest, weight


def temperature_weights(sizes: dict[str, float], temperature: float) -> dict[str, float]:
    """Weights p_i ∝ size_i ** (1 / temperature), normalized to sum to 1."""
    if not temperature > 0:
        raise MixtureError(f"--mix-temperature must be > 0, got {temperature}")
    if any(s <= 0 for s in sizes.values()):
        raise MixtureError(f"every domain needs training tokens for --mix-temperature: {sizes}")
    logs = {k: math.log(v) / temperature for k, v in sizes.items()}
    top = max(logs.values())
    raw = {k: math.exp(v - top) for k, v in logs.items()}
    total = sum(raw.values())
    return {k: v / total for k, v in raw.items()}


def normalize_weights(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    if not total > 0:
        raise MixtureError(f"the mixture weights sum to {total}; at least one must be > 0")
    return {k: v / total for k, v in weights.items()}


class MixtureSampler:
    """Domain of each training step: i.i.d. draws with probabilities `weights`, seeded."""

    def __init__(self, weights: dict[str, float], seed: int = 0):
        self.weights = normalize_weights(dict(weights))
        self.names = list(self.weights)
        self.seed = seed
        self._cumulative = np.cumsum([self.weights[n] for n in self.names])
        self._block, self._draws = None, None

    def _choices(self, block: int) -> np.ndarray:
        if block != self._block:
            u = np.random.default_rng([self.seed, 0x6D6978, block]).random(BLOCK)
            idx = np.searchsorted(self._cumulative, u * self._cumulative[-1], side="right")
            self._draws = np.minimum(idx, len(self.names) - 1)
            self._block = block
        return self._draws

    def index_at(self, step: int) -> int:
        """Index into `names` of the domain that training step `step` (0-based) draws from."""
        if step < 0:
            raise ValueError("step must be >= 0")
        return int(self._choices(step // BLOCK)[step % BLOCK])

    def domain_at(self, step: int) -> str:
        return self.names[self.index_at(step)]


def union_vocab(raw_vocabs: list[dict]) -> tuple[list[str], list[int]]:
    """One vocabulary from several `vocab.json` dicts: the specials first, then every token of
    any of them by descending summed count (ties by token), as the pipeline orders a vocabulary
    (so the adaptive softmax's frequency clusters stay meaningful). The union of one vocabulary
    is that vocabulary in its own order (one that came without counts is not re-sorted)."""
    counts: dict[str, int] = {}
    special = [0] * len(SPECIAL_TOKENS)
    for raw in raw_vocabs:
        tokens, cnts = raw["tokens"], raw.get("counts") or [0] * len(raw["tokens"])
        if list(tokens[: len(SPECIAL_TOKENS)]) != list(SPECIAL_TOKENS):
            raise MixtureError(f"a vocabulary does not start with {list(SPECIAL_TOKENS)}")
        if len(raw_vocabs) == 1:
            return list(tokens), [int(c) for c in cnts]
        for i, (t, c) in enumerate(zip(tokens, cnts)):
            if i < len(SPECIAL_TOKENS):
                special[i] += int(c)
            else:
                counts[t] = counts.get(t, 0) + int(c)
    ordered = sorted(counts, key=lambda t: (-counts[t], t))
    return [*SPECIAL_TOKENS, *ordered], [*special, *(counts[t] for t in ordered)]


def oov_train_tokens(raw_vocab: dict, model_tokens: list[str]) -> tuple[int, int, int]:
    """(distinct tokens, train tokens) of a domain that the model vocabulary lacks (these map
    to `<unk>`; the domain's own `unk_tokens` are counted too), and the domain's train tokens."""
    known = set(model_tokens)
    missing = [
        (t, c)
        for t, c in zip(
            raw_vocab["tokens"][len(SPECIAL_TOKENS) :],
            (raw_vocab.get("counts") or [])[len(SPECIAL_TOKENS) :],
        )
        if t not in known
    ]
    tokens = sum(int(c) for _, c in missing) + int(raw_vocab.get("unk_tokens", 0))
    return len(missing), tokens, int(raw_vocab.get("total_tokens", 0))
