"""The tokenizer's pipeline steps: a shard's sample equals adding every row to the sample,
samples of shards merge to the sample of all of them in a Beam pipeline, a failed training is
one line, and the flags refuse what cannot work."""

import argparse

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from beam_jobs.tokens.bpe import HFTokenizer
from beam_jobs.tokens.options import add_token_args, check_layout, parse_formats, token_config
from beam_jobs.tokens.sample import BoundedSample
from beam_jobs.tokens.steps import (
    MergeSamples,
    TokenizerTrainingError,
    shard_sample,
    train,
    user_error,
)
from beam_jobs.tokens.train import TrainConfig

DOCS = st.lists(
    st.tuples(st.text("abc", min_size=1, max_size=4), st.text("xyzあ", max_size=30)),
    max_size=40,
    unique_by=lambda d: d[0],
)


SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string())])


def oracle(docs, budget: int) -> list:
    sample = BoundedSample(budget)
    for doc_id, text in docs:
        sample.add_document(doc_id, text)
    return sample.documents()


@settings(max_examples=60, deadline=None)
@given(docs=DOCS, budget=st.integers(1, 200))
def test_a_shards_sample_equals_adding_every_row(docs, budget):
    config = TrainConfig(sample_mb=budget / 1e6)
    table = pa.table({"id": [d[0] for d in docs], "text": [d[1] for d in docs]}, schema=SCHEMA)
    assert shard_sample(table, config).documents() == oracle(docs, budget)


def test_shard_samples_merge_to_the_sample_of_the_whole_split():
    docs = [(f"doc{i:03d}", "あいう" * (i % 7 + 1)) for i in range(200)]
    config = TrainConfig(sample_mb=300 / 1e6)
    shards = [docs[k::5] for k in range(5)]
    samples = [
        shard_sample(pa.table({"id": [d[0] for d in s], "text": [d[1] for d in s]}), config)
        for s in shards
    ]
    want = oracle(docs, config.sample_bytes)
    assert 0 < len(want) < len(docs)
    with TestPipeline(runner="FnApiRunner") as p:
        merged = (
            p
            | beam.Create(samples, reshuffle=False)
            | beam.CombineGlobally(MergeSamples(config.sample_bytes))
            | beam.Map(lambda s: s.documents())
        )
        assert_that(merged, lambda got: (got == [want]) or pytest.fail(str(got)[:200]))


def test_a_failed_training_is_one_line():
    sample = BoundedSample(10_000).add_document("a", "あいうえお" * 20)
    with pytest.raises(TokenizerTrainingError) as error:
        train(sample, TrainConfig(vocab_size=50_000, num_threads=1))
    assert "--vocab-size 50000 is larger than the tokenizer sample supports" in str(error.value)
    with pytest.raises(TokenizerTrainingError, match="empty"):
        train(BoundedSample(10), TrainConfig(num_threads=1))


def test_user_error_finds_the_line_in_a_runners_wrapped_error():
    line = "--vocab-size 9 is below the 300 pieces the sample needs; raise --vocab-size"
    assert user_error(TokenizerTrainingError(line + " [while running 'Tokenizer/Train']")) == line
    wrapped = RuntimeError(
        "Pipeline failed: Traceback (most recent call last):\n  File x, line 3\n"
        f"beam_jobs.tokens.steps.TokenizerTrainingError: {line} [while running 'T']\n"
    )
    assert user_error(wrapped) == line
    try:
        try:
            raise TokenizerTrainingError(line)
        except TokenizerTrainingError as inner:
            raise RuntimeError("step failed") from inner
    except RuntimeError as outer:
        assert user_error(outer) == line
    assert user_error(RuntimeError("disk full")) is None


def options(*argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokenizer", default="char")
    parser.add_argument("--min-count", type=int, default=1)
    parser.add_argument("--max-vocab", type=int, default=0)
    add_token_args(parser)
    return parser.parse_args(list(argv))


def test_token_config_of_flags():
    assert not token_config(options()).has_ids
    config = token_config(
        options(
            "--tokenizer",
            "sentencepiece",
            "--vocab-size",
            "8000",
            "--token-formats",
            "parquet, megatron",
        )
    )
    assert config.has_ids and config.clean_tokenizer == "char"
    assert config.train.vocab_size == 8000 and config.train.sentencepiece_type == "unigram"
    assert config.formats == ("megatron", "parquet")
    assert token_config(options("--tokenizer", "bpe")).train.vocab_size == 16000
    assert parse_formats("") == ()
    with pytest.raises(ValueError, match="at least 260"):
        token_config(options("--tokenizer", "bpe", "--vocab-size", "100"))
    with pytest.raises(ValueError, match="--tokenizer-sample-mb must be positive"):
        token_config(options("--tokenizer", "bpe", "--tokenizer-sample-mb", "0"))


def gpt2_like(tmp_path):
    """A tokenizer.json whose only special token is <|endoftext|> (GPT-2's layout)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(
        ["あいうえお かきくけこ"] * 20,
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["<|endoftext|>"],
            show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    path = tmp_path / "tokenizer.json"
    path.write_text(tok.to_str())
    return path


def test_a_model_without_the_pipelines_specials_first_is_refused(tmp_path):
    path = gpt2_like(tmp_path)
    model = HFTokenizer.from_bytes(path.read_bytes())
    assert model.special_ids() == {"<unk>": None, "<bos>": None, "<eos>": 0}
    with pytest.raises(ValueError, match="needs <unk>, <bos>, <eos> at ids 0, 1, 2") as error:
        check_layout(model, str(path))
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="is a bpe model, not --tokenizer sentencepiece"):
        token_config(options("--tokenizer", "sentencepiece", "--tokenizer-model", str(path)))
    with pytest.raises(ValueError, match="at ids 0, 1, 2"):
        token_config(options("--tokenizer-model", str(path)))
