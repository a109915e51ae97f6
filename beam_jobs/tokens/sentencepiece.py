"""SentencePiece (Unigram by default, or BPE) trained deterministically, with exact round trips.

Training options, and why:
* `byte_fallback`: a character outside the pieces becomes its UTF-8 bytes, never `<unk>`.
* `normalization_rule_name=identity`, `add_dummy_prefix=False`,
  `remove_extra_whitespaces=False`: the pipeline has normalized the text already (NFKC), and
  `decode(encode(text)) == text` must hold exactly, spaces included.
* `user_defined_symbols=["\\n"]`: SentencePiece trains on lines; a newline is one piece.
* `unk/bos/eos = 0/1/2` named `<unk> <bos> <eos>`, no pad: the pipeline's specials first.
* `num_threads` is part of the model: with the same texts and thread count the model file is
  byte-identical (measured: two runs, two processes), but 1, 2 and 4 threads give three
  different files (the EM sums in another order). So it is a fixed option, never the core count.
* `input_sentence_size=0`: every sentence of the sample is used, nothing is drawn at random
  (the sample itself is chosen by a hash of the id, see `beam_jobs.tokens.sample`).

U+2581 (`▁`) is SentencePiece's space symbol: a literal one in the text would decode as a
space. `encode` gives it as its three UTF-8 byte pieces instead, which decode back to `▁`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator, Sequence

import sentencepiece as spm

from beam_jobs.tokens.subword import SubwordTokenizer, VocabSizeError, first_line
from beam_jobs.tokens.tokenizers import BOS, EOS, UNK

MODEL_TYPES = ("unigram", "bpe")
SPACE_SYMBOL = "\u2581"
# SentencePiece skips a sentence longer than max_sentence_length bytes; long lines are cut
# into chunks of at most this many characters (4 bytes each at most) instead.
MAX_SENTENCE_CHARS = 4096


class SentencePieceTokenizer(SubwordTokenizer):
    name = "sentencepiece"
    model_file = "tokenizer.model"

    def _build(self):
        return spm.SentencePieceProcessor(model_proto=self.model_bytes)

    def _special_ids(self) -> dict[str, int | None]:
        sp = self.model
        ids = {UNK: sp.unk_id(), BOS: sp.bos_id(), EOS: sp.eos_id()}
        if ids[EOS] < 0:
            raise ValueError("the SentencePiece model has no end-of-sequence piece (eos_id -1)")
        return {k: (v if v >= 0 else None) for k, v in ids.items()}

    def _vocab_size(self) -> int:
        return self.model.get_piece_size()

    def id_to_piece(self, i: int) -> str:
        return self.model.id_to_piece(i)

    def _space_bytes(self) -> list[int]:
        return [self.model.piece_to_id(f"<0x{b:02X}>") for b in SPACE_SYMBOL.encode("utf-8")]

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        out = self.model.encode(list(texts), num_threads=1)
        for k, text in enumerate(texts):
            if SPACE_SYMBOL in text:
                out[k] = self._encode_space_symbols(text)
        return out

    def _encode_space_symbols(self, text: str) -> list[int]:
        escaped = self._space_bytes()
        if any(self.model.is_unknown(i) for i in escaped):  # a model without byte pieces
            return self.model.encode(text)
        ids: list[int] = []
        for k, part in enumerate(text.split(SPACE_SYMBOL)):
            if k:
                ids.extend(escaped)
            ids.extend(self.model.encode(part))
        return ids

    def _decode(self, ids: list[int]) -> str:
        return self.model.decode(ids)

    def _pieces(self, text: str) -> list[str]:
        return [self.model.id_to_piece(i) for i in self._encode([text])[0]]

    def join(self, tokens: list[str]) -> str:
        return self.model.decode_pieces(list(tokens))


def training_sentences(texts: Iterable[str]) -> Iterator[str]:
    """The lines of `texts` (newlines become the `\\n` piece), long ones cut into chunks."""
    for text in texts:
        for line in text.split("\n"):
            for start in range(0, len(line), MAX_SENTENCE_CHARS):
                yield line[start : start + MAX_SENTENCE_CHARS]


def trainer_options(
    vocab_size: int,
    model_type: str = "unigram",
    num_threads: int = 4,
    character_coverage: float = 0.9995,
) -> dict:
    if model_type not in MODEL_TYPES:
        raise ValueError(f"--sentencepiece-type must be one of {MODEL_TYPES}, not {model_type!r}")
    return {
        "model_type": model_type,
        "vocab_size": int(vocab_size),
        "byte_fallback": True,
        "character_coverage": character_coverage,
        "normalization_rule_name": "identity",
        "add_dummy_prefix": False,
        "remove_extra_whitespaces": False,
        "allow_whitespace_only_pieces": True,
        "split_digits": False,
        "user_defined_symbols": ["\n"],
        "unk_id": 0,
        "bos_id": 1,
        "eos_id": 2,
        "pad_id": -1,
        "unk_piece": UNK,
        "bos_piece": BOS,
        "eos_piece": EOS,
        "num_threads": int(num_threads),
        "input_sentence_size": 0,
        "shuffle_input_sentence": False,
        "max_sentence_length": 4 * MAX_SENTENCE_CHARS,
        "hard_vocab_limit": True,
    }


def train_sentencepiece(
    texts: Iterable[str],
    vocab_size: int,
    model_type: str = "unigram",
    num_threads: int = 4,
    character_coverage: float = 0.9995,
) -> SentencePieceTokenizer:
    """Train on `texts` (in this order); same texts and options give the same model bytes."""
    options = trainer_options(vocab_size, model_type, num_threads, character_coverage)
    sentences = (s for s in training_sentences(texts) if s)
    first = next(sentences, None)
    if first is None:
        raise ValueError("the tokenizer sample is empty: there is no text to train on")
    writer = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=_chain(first, sentences),
            model_writer=writer,
            minloglevel=2,
            **options,
        )
    except RuntimeError as e:
        raise _reword(e, vocab_size) from None
    shown = {k: v for k, v in options.items() if k != "user_defined_symbols"}
    info = {
        "model_type": model_type,
        "library": f"sentencepiece {spm.__version__}",
        "trainer": shown,
    }
    return SentencePieceTokenizer(writer.getvalue(), info)


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def _reword(error: RuntimeError, vocab_size: int) -> Exception:
    message = str(error)
    most = re.search(r"Please set it to a value <= (\d+)", message)
    if most:
        return VocabSizeError(
            f"--vocab-size {vocab_size} is larger than the tokenizer sample supports (at most "
            f"{most.group(1)} pieces); lower --vocab-size or raise --tokenizer-sample-mb"
        )
    least = re.search(r"smaller than required_chars\. \d+ vs (\d+)", message)
    if least:
        return VocabSizeError(
            f"--vocab-size {vocab_size} is below the {least.group(1)} pieces the sample needs "
            "(specials, 256 bytes, newline and its characters); raise --vocab-size"
        )
    return ValueError(f"SentencePiece training failed: {first_line(error)}")
