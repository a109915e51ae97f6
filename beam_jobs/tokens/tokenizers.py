"""Pluggable tokenizers: a name in the manifest maps back to the same tokenizer in `lm`.

Characters are the default (the design's tokenizer). A subword tokenizer plugs in by
subclassing `Tokenizer` and registering itself in `TOKENIZERS`.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from beam_jobs.text.codepoints import code_points

UNK, BOS, EOS = "<unk>", "<bos>", "<eos>"
SPECIAL_TOKENS = (UNK, BOS, EOS)


class Tokenizer:
    """Splits normalized text into token strings; `join` is its inverse on in-vocabulary text."""

    name = "base"

    def tokenize(self, text: str) -> list[str]:
        raise NotImplementedError

    def join(self, tokens: list[str]) -> str:
        raise NotImplementedError

    def count(self, text: str) -> int:
        """Number of tokens of `text` (subclasses may skip building the list)."""
        return len(self.tokenize(text))

    def counts(self, text: str) -> dict[str, int]:
        """How often each token occurs in `text` (subclasses may count without the list)."""
        return Counter(self.tokenize(text))

    def config(self) -> dict:
        return {"name": self.name}


class CharTokenizer(Tokenizer):
    """One token per Unicode code point."""

    name = "char"

    def tokenize(self, text: str) -> list[str]:
        return list(text)

    def join(self, tokens: list[str]) -> str:
        return "".join(tokens)

    def count(self, text: str) -> int:
        return len(text)

    def counts(self, text: str) -> dict[str, int]:
        # Counting code points in numpy: a Counter over list(text) makes one str object per
        # CJK character, and their garbage collection made the vocabulary step superlinear.
        codes, sizes = np.unique(code_points(text), return_counts=True)
        return dict(zip(map(chr, codes.tolist()), sizes.tolist()))


TOKENIZERS = {CharTokenizer.name: CharTokenizer}


def get_tokenizer(config: dict | str) -> Tokenizer:
    """Build a tokenizer from its name or from the `tokenizer` entry of a manifest."""
    name = config if isinstance(config, str) else config["name"]
    try:
        cls = TOKENIZERS[name]
    except KeyError:
        raise ValueError(f"unknown tokenizer {name!r}; known: {sorted(TOKENIZERS)}") from None
    return cls()
