"""What the subword tokenizers share: a model held as bytes, its config, save and load.

A subword tokenizer is its model file's bytes plus a small config (`tokenizer_meta.json`, not
`tokenizer_config.json`: that name is Hugging Face transformers' own, see `beam_jobs.tokens.bpe`):
it pickles as those bytes (a Beam side input, a DoFn attribute) and is rebuilt lazily in each
worker, and it loads from any Beam filesystem. Its ids are the model's own; the models this
project trains put `<unk>`, `<bos>`, `<eos>` at ids 0, 1, 2 (`specials_first`), so the
pipeline's vocabulary can list the model's pieces in id order with the specials first.
"""

from __future__ import annotations

import hashlib
import itertools
import posixpath
from collections.abc import Sequence

import numpy as np
from apache_beam.io.filesystems import FileSystems

from beam_jobs.io.fs import atomic_create, read_json, write_json
from beam_jobs.tokens.tokenizers import SPECIAL_TOKENS, Tokenizer, get_tokenizer

CONFIG_FILE = "tokenizer_meta.json"


class VocabSizeError(ValueError):
    """`--vocab-size` does not fit the training sample."""


def read_model_bytes(path: str, what: str) -> bytes:
    """The bytes of a model file, or a one-line ValueError naming the file."""
    try:
        if not FileSystems.exists(path):
            raise ValueError(f"{path}: no such {what} file")
        with FileSystems.open(path) as handle:
            data = handle.read()
    except ValueError:
        raise
    except Exception as e:  # permissions, a directory, a broken remote filesystem
        raise ValueError(f"{path}: cannot read the {what} file ({first_line(e)})") from None
    if not data:
        raise ValueError(f"{path}: the {what} file is empty")
    return data


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class SubwordTokenizer(Tokenizer):
    """A tokenizer with its own vocabulary; subclasses wrap one library (`_build`, `_encode`,
    `_decode`, `_pieces`, `_vocab_size`, `_special_ids`)."""

    has_ids = True
    model_file = "model"  # the file name inside a saved tokenizer directory

    def __init__(self, model_bytes: bytes, info: dict | None = None):
        self.model_bytes = model_bytes
        self.info = dict(info or {})
        self._model = None
        self.model  # noqa: B018 -- fail here, not in a worker, on a broken model
        self._specials = self._special_ids()

    # -- what a subclass provides -------------------------------------------------------------
    def _build(self):
        raise NotImplementedError

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        raise NotImplementedError

    def _decode(self, ids: list[int]) -> str:
        raise NotImplementedError

    def _pieces(self, text: str) -> list[str]:
        raise NotImplementedError

    def _vocab_size(self) -> int:
        raise NotImplementedError

    def _special_ids(self) -> dict[str, int | None]:
        raise NotImplementedError

    def id_to_piece(self, i: int) -> str:
        raise NotImplementedError

    # -- the interface ------------------------------------------------------------------------
    @property
    def model(self):
        if self._model is None:
            self._model = self._build()
        return self._model

    @property
    def vocab_size(self) -> int:
        return self._vocab_size()

    def special_ids(self) -> dict[str, int | None]:
        return dict(self._specials)

    @property
    def eos_id(self) -> int:
        return self._specials["<eos>"]

    @property
    def specials_first(self) -> bool:
        """Whether `<unk>`, `<bos>`, `<eos>` are ids 0, 1, 2 (true of every model we train)."""
        return [self._specials[t] for t in SPECIAL_TOKENS] == [0, 1, 2]

    def pieces(self) -> list[str]:
        """Every piece in id order (`pieces()[i]` has id i): the vocabulary's tokens."""
        return [self.id_to_piece(i) for i in range(self.vocab_size)]

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        # One conversion for the batch, then views: 20% less than one np.asarray per text
        # (the conversion is about a tenth of SentencePiece's encode time).
        lists = self._encode(texts)
        sizes = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
        flat = np.fromiter(
            itertools.chain.from_iterable(lists), dtype=np.int32, count=int(sizes.sum())
        )
        return np.split(flat, np.cumsum(sizes)[:-1]) if lists else []

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self._encode([text])[0], dtype=np.int32)

    def decode(self, ids) -> str:
        return self._decode([int(i) for i in ids])

    def tokenize(self, text: str) -> list[str]:
        return self._pieces(text)

    def count(self, text: str) -> int:
        return len(self._encode([text])[0])

    def counts(self, text: str) -> dict[str, int]:
        ids, sizes = np.unique(self.encode(text), return_counts=True)
        return {self.id_to_piece(i): n for i, n in zip(ids.tolist(), sizes.tolist())}

    def count_ids(self, texts: Sequence[str]) -> np.ndarray:
        """How often each id occurs in `texts`: int64 of length `vocab_size` (a vocabulary
        count that sums across workers without strings)."""
        out = np.zeros(self.vocab_size, dtype=np.int64)
        for ids in self.encode_batch(texts):
            out += np.bincount(ids, minlength=self.vocab_size)
        return out

    def config(self) -> dict:
        return {
            "name": self.name,
            "model": self.model_file,
            "vocab_size": self.vocab_size,
            "special_ids": self.special_ids(),
            "sha256": hashlib.sha256(self.model_bytes).hexdigest(),
            **self.info,
        }

    def save(self, directory: str) -> dict:
        """`directory/<model_file>` and `directory/tokenizer_meta.json`, each written whole;
        returns the config (its `model` is relative to `directory`)."""
        with atomic_create(posixpath.join(directory, self.model_file)) as handle:
            handle.write(self.model_bytes)
        config = self.config()
        write_json(posixpath.join(directory, CONFIG_FILE), config)
        return config

    @classmethod
    def from_config(cls, config: dict, base_dir: str | None = None) -> SubwordTokenizer:
        if "model" not in config:
            raise ValueError(
                f"the {cls.name} tokenizer needs a model: train one or name an existing model file"
            )
        path = config["model"] if base_dir is None else posixpath.join(base_dir, config["model"])
        data = read_model_bytes(path, cls.name)
        want = config.get("sha256")
        if want and hashlib.sha256(data).hexdigest() != want:
            raise ValueError(f"{path}: the model file does not match its config's sha256")
        keep = {
            k: v
            for k, v in config.items()
            if k not in ("name", "model", "vocab_size", "special_ids", "sha256")
        }
        return cls.from_bytes(data, keep, source=path)

    @classmethod
    def from_bytes(
        cls, data: bytes, info: dict | None = None, source: str = "model"
    ) -> SubwordTokenizer:
        try:
            return cls(data, info)
        except ValueError:
            raise
        except Exception as e:
            raise ValueError(
                f"{source}: not a readable {cls.name} model ({first_line(e)})"
            ) from None

    def __getstate__(self):
        return {"model_bytes": self.model_bytes, "info": self.info, "specials": self._specials}

    def __setstate__(self, state):
        self.model_bytes, self.info = state["model_bytes"], state["info"]
        self._specials, self._model = state["specials"], None

    def __eq__(self, other):
        return type(other) is type(self) and other.model_bytes == self.model_bytes

    def __hash__(self):
        return hash(self.model_bytes)


def load_tokenizer(directory: str) -> Tokenizer:
    """The tokenizer saved in `directory` (its `tokenizer_meta.json` names the model)."""
    config = read_json(posixpath.join(directory, CONFIG_FILE))
    if config is None:
        raise ValueError(f"{directory}: no {CONFIG_FILE}")
    return get_tokenizer(config, base_dir=directory)


def load_model_file(path: str) -> SubwordTokenizer:
    """An existing local model: a SentencePiece `.model` or a Hugging Face `tokenizer.json`
    (one-line ValueError when it is missing, unreadable or neither)."""
    if path.endswith(".model"):
        from beam_jobs.tokens.sentencepiece import SentencePieceTokenizer as cls
    elif path.endswith(".json"):
        from beam_jobs.tokens.bpe import HFTokenizer as cls
    else:
        raise ValueError(
            f"{path}: a tokenizer model is a SentencePiece .model or a Hugging Face tokenizer.json"
        )
    return cls.from_bytes(read_model_bytes(path, cls.name), {"source": path}, source=path)
