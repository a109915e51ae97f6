"""Byte-level BPE trained with Hugging Face `tokenizers`, and any local `tokenizer.json`.

The trained model is GPT-2's design: text is cut by the ByteLevel pre-tokenizer's regex and
mapped to 256 byte symbols (no prefix space), so every string has pieces and
`decode(encode(text)) == text` exactly; `<unk>`, `<bos>`, `<eos>` are added first (ids 0, 1,
2). Training is deterministic: the same texts give the same `tokenizer.json` bytes with 1, 2 or
8 rayon threads (measured; the trainer's known hash-order tie-break only concerns
continuing-subword prefixes, which this model does not use).

Special tokens are never matched inside the text (`encode_special_tokens`): a document that
contains the string `<eos>` gets the pieces of those five characters, not id 2. That setting is
not stored in tokenizer.json, so a reader of the file with another library does match them.

A saved directory also holds transformers' `tokenizer_config.json` (the fast tokenizer class and
the three special tokens), so `AutoTokenizer.from_pretrained(DIR/tokenizer)` and the trainers
built on it (Megatron's and NeMo's `HuggingFaceTokenizer`) load it as it is.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Sequence

import tokenizers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from beam_jobs.io.fs import write_json
from beam_jobs.tokens.subword import SubwordTokenizer, VocabSizeError
from beam_jobs.tokens.tokenizers import BOS, EOS, SPECIAL_TOKENS, UNK

# Names other models give the three roles (a loaded tokenizer.json), first match wins.
ROLE_NAMES = {
    UNK: (UNK, "[UNK]"),
    BOS: (BOS, "<s>", "<|begin_of_text|>", "<|startoftext|>"),
    EOS: (EOS, "</s>", "<|endoftext|>", "<|end_of_text|>"),
}


class HFTokenizer(SubwordTokenizer):
    name = "bpe"
    model_file = "tokenizer.json"

    def save(self, directory: str) -> dict:
        config = super().save(directory)
        specials = {
            role: self.id_to_piece(i) for role, i in self.special_ids().items() if i is not None
        }
        write_json(
            posixpath.join(directory, "tokenizer_config.json"),
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "clean_up_tokenization_spaces": False,
                "unk_token": specials.get(UNK),
                "bos_token": specials.get(BOS),
                "eos_token": specials[EOS],
                "model_max_length": 1 << 30,
            },
        )
        return config

    def _build(self):
        tok = Tokenizer.from_str(self.model_bytes.decode("utf-8"))
        tok.encode_special_tokens = True
        tok.no_padding()
        tok.no_truncation()
        return tok

    def _special_ids(self) -> dict[str, int | None]:
        vocab = self.model.get_vocab(with_added_tokens=True)
        ids = {
            role: next((vocab[n] for n in names if n in vocab), None)
            for role, names in ROLE_NAMES.items()
        }
        if ids[EOS] is None:
            raise ValueError(
                f"the tokenizer has no end-of-text token (looked for {', '.join(ROLE_NAMES[EOS])})"
            )
        return ids

    def _vocab_size(self) -> int:
        return self.model.get_vocab_size(with_added_tokens=True)

    def id_to_piece(self, i: int) -> str:
        return self.model.id_to_token(i)

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.model.encode_batch_fast(list(texts), add_special_tokens=False)]

    def _decode(self, ids: list[int]) -> str:
        return self.model.decode(ids, skip_special_tokens=True)

    def _pieces(self, text: str) -> list[str]:
        return self.model.encode(text, add_special_tokens=False).tokens

    def join(self, tokens: list[str]) -> str:
        """Pieces back to text; a string that is not a piece (a placeholder) stays as it is."""
        out, run = [], []
        for t in tokens:
            i = self.model.token_to_id(t)
            if i is None:
                out.append(self._decode(run))
                out.append(t)
                run = []
            else:
                run.append(i)
        out.append(self._decode(run))
        return "".join(out)


def train_bpe(texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> HFTokenizer:
    """Train on `texts` (in this order); same texts and options give the same model bytes."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=int(vocab_size),
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    seen = [False]

    def counted():
        for text in texts:
            seen[0] = seen[0] or bool(text)
            yield text

    tok.train_from_iterator(counted(), trainer=trainer)
    if not seen[0]:
        raise ValueError("the tokenizer sample is empty: there is no text to train on")
    got = tok.get_vocab_size(with_added_tokens=True)
    if got < vocab_size:
        raise VocabSizeError(
            f"--vocab-size {vocab_size} is larger than the tokenizer sample supports (at most "
            f"{got} pieces, merging pairs seen {min_frequency} times or more); lower --vocab-size "
            "or raise --tokenizer-sample-mb"
        )
    info = {
        "model_type": "byte-level BPE",
        "library": f"tokenizers {tokenizers.__version__}",
        "trainer": {"vocab_size": int(vocab_size), "min_frequency": min_frequency},
    }
    return HFTokenizer(tok.to_str().encode("utf-8"), info)
