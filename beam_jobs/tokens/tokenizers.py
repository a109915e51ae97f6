"""Pluggable tokenizers: a name in the manifest maps back to the same tokenizer in `lm`.

Characters are the default (the design's tokenizer). A subword tokenizer plugs in by
subclassing `Tokenizer` and registering itself in `TOKENIZERS`; the subword ones
(`beam_jobs.tokens.sentencepiece`, `beam_jobs.tokens.bpe`) own their ids, so they also implement
the id methods below. Characters get their ids from the pipeline's `vocab.json` instead.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Sequence

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

    # Ids: only tokenizers with their own vocabulary (the subword ones) implement these.
    has_ids = False

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError(f"{self.name}: ids come from the pipeline's vocab.json")

    def special_ids(self) -> dict[str, int | None]:
        """Id of each of `SPECIAL_TOKENS` (None where the model has no such token)."""
        raise NotImplementedError(f"{self.name}: ids come from the pipeline's vocab.json")

    def encode(self, text: str) -> np.ndarray:
        """Ids of `text` as int32, no `<bos>`/`<eos>` added."""
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        raise NotImplementedError(f"{self.name}: ids come from the pipeline's vocab.json")

    def decode(self, ids) -> str:
        """Text of `ids`; special tokens are dropped."""
        raise NotImplementedError(f"{self.name}: ids come from the pipeline's vocab.json")

    def save(self, directory: str) -> dict:
        """Write the model and its config into `directory`; return the config."""
        raise NotImplementedError(f"{self.name}: nothing to save")

    @classmethod
    def from_config(cls, config: dict, base_dir: str | None = None) -> Tokenizer:
        return cls()


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


# The subword tokenizers are named by module (imported on first use: they need their library).
TOKENIZERS: dict[str, type[Tokenizer] | str] = {
    CharTokenizer.name: CharTokenizer,
    "sentencepiece": "beam_jobs.tokens.sentencepiece:SentencePieceTokenizer",
    "bpe": "beam_jobs.tokens.bpe:HFTokenizer",
}


def tokenizer_class(name: str) -> type[Tokenizer]:
    """The registered class of a tokenizer name (importing its module on first use)."""
    try:
        cls = TOKENIZERS[name]
    except KeyError:
        raise ValueError(f"unknown tokenizer {name!r}; known: {sorted(TOKENIZERS)}") from None
    if isinstance(cls, str):
        module, attr = cls.split(":")
        cls = getattr(importlib.import_module(module), attr)
    return cls


def get_tokenizer(config: dict | str, base_dir: str | None = None) -> Tokenizer:
    """Build a tokenizer from its name or from the `tokenizer` entry of a manifest (a trained
    model's files are found relative to `base_dir`)."""
    name = config if isinstance(config, str) else config["name"]
    cls = tokenizer_class(name)
    return cls.from_config(config if isinstance(config, dict) else {"name": name}, base_dir)
