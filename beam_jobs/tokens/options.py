"""The tokenizer and token-shard flags, and the `TokenConfig` they make (docs/tokens.md).

    --tokenizer char|sentencepiece|bpe      (registered in beam_jobs/options.py, as before)
    --sentencepiece-type unigram|bpe        --vocab-size N     --tokenizer-sample-mb MB
    --tokenizer-model PATH                  --token-formats megatron,llmc,parquet

Everything that cannot work is refused here, with a one-line ValueError, before any work: a
missing or unreadable model, a vocabulary llm.c's uint16 cannot hold, flags that do not apply
to the chosen tokenizer. What only the sample can tell (a `--vocab-size` it cannot support)
is found when the tokenizer is trained, inside the pipeline, before any shard is written.
"""

from __future__ import annotations

import dataclasses

from beam_jobs.io.llmc import check_vocab
from beam_jobs.tokens.subword import SubwordTokenizer, load_model_file
from beam_jobs.tokens.tokenizers import SPECIAL_TOKENS, TOKENIZERS, get_tokenizer
from beam_jobs.tokens.train import TRAINED_KINDS, TrainConfig

TOKEN_FORMATS = ("megatron", "llmc", "parquet")
DEFAULT_VOCAB_SIZE = 16000
DEFAULT_SAMPLE_MB = 32.0
# Flags only the steps after the dedup stage read (the dedup stage counts characters for
# every tokenizer with its own ids), so changing them keeps the stage reusable by --resume.
# (The stage key records what the Clean step counts with, `TokenConfig.clean_tokenizer`.)
TOKEN_OPTIONS = frozenset(
    {
        "tokenizer",
        "sentencepiece_type",
        "vocab_size",
        "tokenizer_sample_mb",
        "tokenizer_model",
        "token_formats",
    }
)


def add_token_args(parser) -> None:
    g = parser.add_argument_group(
        "subword tokenizers and token shards (--tokenizer sentencepiece|bpe; docs/tokens.md)"
    )
    g.add_argument(
        "--sentencepiece-type",
        default=None,
        choices=("unigram", "bpe"),
        help="SentencePiece model type (default unigram)",
    )
    g.add_argument(
        "--vocab-size",
        type=int,
        default=None,
        metavar="N",
        help=f"pieces of a trained tokenizer, specials included (default {DEFAULT_VOCAB_SIZE})",
    )
    g.add_argument(
        "--tokenizer-sample-mb",
        type=float,
        default=None,
        metavar="MB",
        help="UTF-8 MB of train documents, chosen by a hash of the id, to train the tokenizer "
        f"on (default {DEFAULT_SAMPLE_MB:g})",
    )
    g.add_argument(
        "--tokenizer-model",
        default=None,
        metavar="PATH",
        help="an existing local SentencePiece .model or Hugging Face tokenizer.json instead of "
        "training one (its kind sets --tokenizer)",
    )
    g.add_argument(
        "--token-formats",
        default="",
        metavar="LIST",
        help="token shards to write, comma-separated: megatron (.bin/.idx), llmc (uint16 "
        "shards), parquet (an input_ids column in the train/val shards); default none",
    )


@dataclasses.dataclass(frozen=True)
class TokenConfig:
    """Which tokenizer a run uses and which token shards it writes."""

    name: str = "char"
    train: TrainConfig | None = None  # a tokenizer trained in the pipeline
    model_path: str | None = None  # or an existing model, loaded once here
    formats: tuple[str, ...] = ()
    loaded: SubwordTokenizer | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def has_ids(self) -> bool:
        """Whether the tokenizer owns its ids (a subword model), not vocab.json."""
        return self.train is not None or self.loaded is not None

    @property
    def clean_tokenizer(self) -> str:
        """What the Clean step counts with: characters where the ids come later, from a model
        applied after dedup (so the dedup stage does not depend on the model)."""
        return "char" if self.has_ids else self.name

    def settings(self) -> dict:
        """The manifest's `tokenizer` entry as far as it is known before the run (the model's
        own entry replaces it once the model exists)."""
        if not self.has_ids:
            return get_tokenizer(self.name).config()
        return {"name": self.name}

    def summary(self) -> dict:
        return {
            "name": self.name,
            "train": dataclasses.asdict(self.train) if self.train else None,
            "model_path": self.model_path,
            "formats": list(self.formats),
        }


def parse_formats(value: str) -> tuple[str, ...]:
    names = [v.strip() for v in (value or "").split(",") if v.strip()]
    unknown = [n for n in names if n not in TOKEN_FORMATS]
    if unknown:
        raise ValueError(
            f"--token-formats: unknown format {unknown[0]!r}; known: {', '.join(TOKEN_FORMATS)}"
        )
    return tuple(n for n in TOKEN_FORMATS if n in names)


def token_config(opts) -> TokenConfig:
    """The config of parsed flags; ValueError (one line) for anything that cannot work."""
    formats = parse_formats(opts.token_formats)
    if opts.tokenizer_model:
        return _loaded_config(opts, formats)
    name = opts.tokenizer
    if name not in TRAINED_KINDS:
        for flag in ("vocab_size", "sentencepiece_type", "tokenizer_sample_mb"):
            if getattr(opts, flag) is not None:
                raise ValueError(
                    f"--{flag.replace('_', '-')} applies to a trained tokenizer "
                    f"(--tokenizer sentencepiece or bpe), not --tokenizer {name}"
                )
        if formats and not _has_ids(name):
            raise ValueError(
                f"--token-formats needs a tokenizer with its own ids (--tokenizer sentencepiece "
                f"or bpe, or --tokenizer-model); --tokenizer {name} takes its ids from vocab.json"
            )
        return TokenConfig(name=name, formats=formats)
    if opts.sentencepiece_type is not None and name != "sentencepiece":
        raise ValueError("--sentencepiece-type applies to --tokenizer sentencepiece only")
    sample_mb = opts.tokenizer_sample_mb
    train = TrainConfig(
        kind=name,
        vocab_size=DEFAULT_VOCAB_SIZE if opts.vocab_size is None else opts.vocab_size,
        sentencepiece_type=opts.sentencepiece_type or "unigram",
        sample_mb=DEFAULT_SAMPLE_MB if sample_mb is None else sample_mb,
    )
    _check_vocab_options(opts, train.vocab_size, formats)
    return TokenConfig(name=name, train=train, formats=formats)


def _loaded_config(opts, formats: tuple[str, ...]) -> TokenConfig:
    for flag in ("vocab_size", "sentencepiece_type", "tokenizer_sample_mb"):
        if getattr(opts, flag) is not None:
            raise ValueError(
                f"--{flag.replace('_', '-')} trains a tokenizer; --tokenizer-model "
                f"{opts.tokenizer_model} is one already"
            )
    model = load_model_file(opts.tokenizer_model)
    if opts.tokenizer not in ("char", model.name):
        raise ValueError(
            f"--tokenizer-model {opts.tokenizer_model} is a {model.name} model, not "
            f"--tokenizer {opts.tokenizer}"
        )
    check_layout(model, opts.tokenizer_model)
    _check_vocab_options(opts, model.vocab_size, formats)
    return TokenConfig(
        name=model.name, model_path=opts.tokenizer_model, formats=formats, loaded=model
    )


def check_layout(model: SubwordTokenizer, source: str) -> None:
    """The pipeline's vocabulary has `<unk> <bos> <eos>` at ids 0, 1, 2 and names every
    other id by its piece; refuse a model that does not fit that (one-line ValueError)."""
    if not model.specials_first:
        have = ", ".join(f"{k} {v}" for k, v in model.special_ids().items())
        raise ValueError(
            f"{source}: the pipeline needs <unk>, <bos>, <eos> at ids 0, 1, 2, this model has "
            f"{have}; train one with --tokenizer {model.name}"
        )
    pieces = model.pieces()[len(SPECIAL_TOKENS) :]
    clash = sorted(set(SPECIAL_TOKENS) & set(pieces))
    if clash or len(set(pieces)) != len(pieces):
        raise ValueError(f"{source}: two ids share a piece ({clash or 'repeated piece'})")


def _check_vocab_options(opts, vocab_size: int, formats: tuple[str, ...]) -> None:
    if "llmc" in formats:
        check_vocab(vocab_size)
    if opts.min_count != 1 or opts.max_vocab:
        raise ValueError(
            "--min-count and --max-vocab select a character vocabulary; a subword tokenizer's "
            "vocabulary is its model's (set its size with --vocab-size)"
        )


def _has_ids(name: str) -> bool:
    cls = TOKENIZERS.get(name)
    return isinstance(cls, str) or bool(getattr(cls, "has_ids", False))
