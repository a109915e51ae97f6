"""The tokenizer inside the pipeline: sampled from the train split after dedup, trained on one
worker, saved to `DIR/tokenizer/`, and handed to every shard writer as a side input.

    (spill files, removed ids) → JoinShards → SampleShard (per shard: the documents the writer
    will write as train, reduced to that shard's bounded sample) → CombineGlobally
    (BoundedSample merges) → TrainTokenizer (one worker) → SaveTokenizer → one tokenizer

Each shard's sample is taken from exactly the rows `WriteSplitFn` writes as train (the same
`kept_table` and `split_parts`), so the model is trained on train documents only, after exact
and near dedup. The global sample is the merge of the shards' samples (`BoundedSample`
merges), so no worker holds more than the budget plus one document, and the sample depends on
the set of train documents only: the same model on every runner and worker count. With
`--tokenizer-model` the model is loaded by the launcher (an unreadable file is refused before
any work) and only saved here.
"""

from __future__ import annotations

import logging
import posixpath
import re
import time

import apache_beam as beam
import numpy as np
import pyarrow.compute as pc
from apache_beam.io.filesystems import FileSystems

from beam_jobs.io.shards import JoinShards, WriteSplitFn
from beam_jobs.tokens.options import TokenConfig
from beam_jobs.tokens.sample import BoundedSample, sample_key
from beam_jobs.tokens.subword import CONFIG_FILE, SubwordTokenizer, first_line
from beam_jobs.tokens.tokenizers import tokenizer_class
from beam_jobs.tokens.train import TrainConfig, train_on_sample

TOKENIZER_DIR = "tokenizer"
SAMPLE_COLUMNS = ["id", "text", "file", "line"]  # what first_per_id and the sample read


class TokenizerTrainingError(ValueError):
    """Training the tokenizer failed for a reason the user can fix (a flag, the input)."""


def shard_sample(part, config: TrainConfig) -> BoundedSample:
    """The bounded sample of one shard's train rows (an Arrow table with id and text), equal to
    adding every row to a `BoundedSample`, with only the chosen texts turned into strings."""
    sample = config.new_sample()
    ids = part["id"].to_pylist()
    keys = [sample_key(i, config.sample_seed) for i in ids]
    order = sorted(range(len(ids)), key=lambda k: (keys[k], ids[k]))
    sizes = pc.binary_length(part["text"]).to_numpy(zero_copy_only=False)[order]
    # The shortest prefix in sampling order that reaches the budget (all rows if none does).
    reach = np.flatnonzero(np.cumsum(sizes, dtype=np.int64) >= sample.budget)
    chosen = order[: int(reach[0]) + 1] if len(reach) else order
    texts = part["text"].take(chosen).to_pylist() if chosen else []
    for k, text in zip(chosen, texts):
        sample.add(keys[k], ids[k], text)
    return sample


class SampleShardFn(beam.DoFn):
    """(shard, spill row-group refs and removed ids) → that shard's train sample."""

    def __init__(self, writer: WriteSplitFn, config: TrainConfig):
        self.writer, self.config = writer, config

    def process(self, item):
        _, groups = item
        table = self.writer.kept_table(groups, columns=SAMPLE_COLUMNS)
        for name, part in self.writer.split_parts(table, groups):
            if name == "train":
                yield shard_sample(part, self.config)


class MergeSamples(beam.CombineFn):
    """Shards' `BoundedSample`s → the sample of the whole train split."""

    def __init__(self, budget_bytes: int):
        self.budget = budget_bytes

    def create_accumulator(self):
        return BoundedSample(self.budget)

    def add_input(self, acc, sample):
        return acc.merge([sample])

    def merge_accumulators(self, accs):
        accs = list(accs)
        return accs[0].merge(accs[1:])

    def extract_output(self, acc):
        return acc


def train(sample: BoundedSample, config: TrainConfig) -> SubwordTokenizer:
    """Train on the sample (one worker); a failure the user can fix becomes one line."""
    counters = beam.metrics.Metrics
    counters.counter("tokenizer", "sample_documents").inc(len(sample))
    counters.counter("tokenizer", "sample_bytes").inc(sample.total)
    started = time.process_time()
    try:
        tokenizer = train_on_sample(sample, config)
    except ValueError as e:  # VocabSizeError, an empty sample, SentencePiece's own checks
        raise TokenizerTrainingError(first_line(e)) from None
    counters.counter("tokenizer", "train_cpu_ms").inc(int((time.process_time() - started) * 1e3))
    logging.info(
        "trained a %s tokenizer of %d pieces on %d documents (%d bytes)",
        tokenizer.name,
        tokenizer.vocab_size,
        len(sample),
        sample.total,
    )
    return tokenizer


def save(tokenizer: SubwordTokenizer, output_dir: str) -> SubwordTokenizer:
    tokenizer.save(FileSystems.join(output_dir, TOKENIZER_DIR))
    return tokenizer


def saved_model_config(tokens: TokenConfig) -> str | dict:
    """How a worker finds the saved model before its sha256 is known (relative to the output
    directory); the tokenizer's name where it has no model."""
    if not tokens.has_ids:
        return tokens.name
    model_file = tokenizer_class(tokens.name).model_file
    return {"name": tokens.name, "model": posixpath.join(TOKENIZER_DIR, model_file)}


def manifest_entry(tokenizer: SubwordTokenizer) -> dict:
    """The manifest's `tokenizer` entry: the model's config, paths relative to the output
    directory (what `get_tokenizer(entry, base_dir=DIR)` and `lm` read)."""
    entry = tokenizer.config()
    entry["model"] = posixpath.join(TOKENIZER_DIR, entry["model"])
    entry["config"] = posixpath.join(TOKENIZER_DIR, CONFIG_FILE)
    return entry


class BuildTokenizer(beam.PTransform):
    """(`SpillFile`s, removed ids) → one saved tokenizer (trained, or the loaded one)."""

    def __init__(self, tokens: TokenConfig, writer: WriteSplitFn, output_dir: str):
        super().__init__()
        self.tokens, self.writer, self.output_dir = tokens, writer, output_dir

    def expand(self, inputs):
        spill_files, *_ = inputs
        if self.tokens.loaded is not None:
            model = spill_files.pipeline | "Loaded" >> beam.Create([self.tokens.loaded])
        else:
            config = self.tokens.train
            model = (
                inputs
                | "JoinShards" >> JoinShards(self.writer.num_shards)
                | "SampleShard" >> beam.ParDo(SampleShardFn(self.writer, config))
                | "MergeSamples" >> beam.CombineGlobally(MergeSamples(config.sample_bytes))
                | "Train" >> beam.Map(train, config)
            )
        return model | "Save" >> beam.Map(save, self.output_dir)


_RAISED = re.compile(r"(?:TokenizerTrainingError|VocabularyTooLarge): ([^\n]*)")


def user_error(error: BaseException) -> str | None:
    """The one-line message of a tokenizer failure raised inside the pipeline (runners wrap a
    worker's exception in their own, with its traceback as text), or None for another error."""
    seen = error
    while seen is not None:
        if isinstance(seen, TokenizerTrainingError):
            return _RAISED.sub(r"\1", first_line(seen)).split(" [while running")[0]
        seen = seen.__cause__ or seen.__context__
    found = _RAISED.findall(str(error))
    return found[-1].split(" [while running")[0].strip() if found else None
