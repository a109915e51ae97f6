"""Training a subword tokenizer from its options: one entry point for both libraries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

from beam_jobs.tokens.sample import BoundedSample
from beam_jobs.tokens.subword import SubwordTokenizer

TRAINED_KINDS = ("sentencepiece", "bpe")


@dataclass(frozen=True)
class TrainConfig:
    """What a trained model depends on besides its sample (all of it goes in its config)."""

    kind: str = "sentencepiece"  # or "bpe"
    vocab_size: int = 16000
    sentencepiece_type: str = "unigram"  # or "bpe"
    num_threads: int = 4  # SentencePiece: part of the model (see beam_jobs.tokens.sentencepiece)
    character_coverage: float = 0.9995  # SentencePiece: rarer characters go to bytes
    min_frequency: int = 2  # Hugging Face BPE: rarer pairs are not merged
    sample_mb: float = 32.0
    sample_seed: str = "0"

    def __post_init__(self):
        if self.kind not in TRAINED_KINDS:
            raise ValueError(f"a trained tokenizer is one of {TRAINED_KINDS}, not {self.kind!r}")
        if self.vocab_size < 260:
            raise ValueError(
                f"--vocab-size must be at least 260 (3 specials and 256 bytes), "
                f"not {self.vocab_size}"
            )
        if self.sample_mb <= 0:
            raise ValueError(f"--tokenizer-sample-mb must be positive, not {self.sample_mb}")
        if self.num_threads < 1:
            raise ValueError(f"the trainer's thread count must be positive, not {self.num_threads}")

    @property
    def sample_bytes(self) -> int:
        return int(self.sample_mb * 1_000_000)

    def new_sample(self) -> BoundedSample:
        return BoundedSample(self.sample_bytes)


def train_tokenizer(texts: Iterable[str], config: TrainConfig) -> SubwordTokenizer:
    """A model trained on `texts` in their order (same texts and config: same model bytes)."""
    if config.kind == "sentencepiece":
        from beam_jobs.tokens.sentencepiece import train_sentencepiece

        return train_sentencepiece(
            texts,
            config.vocab_size,
            config.sentencepiece_type,
            config.num_threads,
            config.character_coverage,
        )
    from beam_jobs.tokens.bpe import train_bpe

    return train_bpe(texts, config.vocab_size, config.min_frequency)


def train_on_sample(sample: BoundedSample, config: TrainConfig) -> SubwordTokenizer:
    """`train_tokenizer` on a hash-chosen sample; its config records the sample and options."""
    tokenizer = train_tokenizer(sample.texts(), config)
    tokenizer.info["sample"] = sample.summary()
    tokenizer.info["train_config"] = asdict(config)
    return tokenizer
