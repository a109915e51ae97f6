"""Token ids of the train/val shards, made where each shard is written (`io/shards.py` calls
`TokenShards.process` once per split of every shard, with the tokenizer as a side input).

Per (split, shard), in the shard's row order (sorted by id): the documents are encoded in
batches, `n_tokens` becomes the model's count, and the formats of `--token-formats` are
written from the same ids: an `input_ids` column appended to the Parquet shard (`parquet`),
`tokens/megatron/{split}-SSSSS-of-NNNNN.{bin,idx}` (`megatron`) and
`tokens/llmc/{split}_SSSSSS.bin` (`llmc`). So the text, the ids and the statistics agree row for
row. A split of a shard with no documents gets no Megatron or llm.c file (megatron-core's
mmap reader and llm.c's loader both fail on an empty file); the manifest lists what exists.
The train split's id counts go on to the vocabulary.
"""

from __future__ import annotations

import posixpath
import time
from typing import NamedTuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.io.filesystems import FileSystems

from beam_jobs.io.input_ids import with_input_ids
from beam_jobs.io.llmc import write_llmc
from beam_jobs.io.megatron import write_megatron

TOKEN_FILES = "token_files"
ID_COUNTS = "id_counts"
TOKENS_DIR = "tokens"
BATCH_DOCS = 256  # documents per encode_batch call


class TokenFile(NamedTuple):
    """A written Megatron pair or llm.c shard."""

    format: str  # megatron or llmc
    split: str
    shard: int
    path: str  # relative to the output directory (Megatron: the prefix, without .bin/.idx)
    documents: int
    tokens: int  # as stored: each document's ids plus its one <eos> / end-of-text id
    sha256: dict  # file (relative path) -> sha256


class IdCounts(NamedTuple):
    """How often each id occurs in the train documents of one shard, and how many there are."""

    counts: np.ndarray  # int64, one per id
    documents: int


def megatron_prefix(split: str, shard: int, num_shards: int) -> str:
    return posixpath.join(TOKENS_DIR, "megatron", f"{split}-{shard:05d}-of-{num_shards:05d}")


def llmc_path(split: str, shard: int) -> str:
    return posixpath.join(TOKENS_DIR, "llmc", f"{split}_{shard:06d}.bin")


def encode_column(texts: pa.ChunkedArray | pa.Array, tokenizer) -> list[np.ndarray]:
    """Ids of every text of an Arrow column, in order (a batch of Python strings at a time)."""
    out: list[np.ndarray] = []
    for start in range(0, len(texts), BATCH_DOCS):
        out.extend(tokenizer.encode_batch(texts.slice(start, BATCH_DOCS).to_pylist()))
    return out


def tokenize_part(part: pa.Table, tokenizer, input_ids: bool) -> tuple[pa.Table, list]:
    """The pipeline's tokenize step: `part` with `n_tokens` counted by the model (and the
    `input_ids` column when asked), and each row's ids."""
    ids = encode_column(part["text"], tokenizer)
    lengths = pa.array(np.fromiter(map(len, ids), np.int64, len(ids)), pa.int64())
    part = part.set_column(part.schema.get_field_index("n_tokens"), "n_tokens", lengths)
    if input_ids:
        part = with_input_ids(part, ids, tokenizer.vocab_size)
    return part, ids


class TokenShards:
    """Called by `WriteSplitFn` for each split of each shard; see the module docstring."""

    tags = (TOKEN_FILES, ID_COUNTS)

    def __init__(self, output_dir: str, formats: tuple[str, ...], num_shards: int):
        self.output_dir, self.formats, self.num_shards = output_dir, tuple(formats), num_shards

    def process(self, split: str, shard: int, part: pa.Table, tokenizer):
        """(part with model counts, [TaggedOutput of TokenFile / IdCounts])."""
        metrics = beam.metrics.Metrics
        start = time.process_time()
        tokenizer.model  # noqa: B018 -- built from its bytes once per worker copy: timed apart
        loaded = time.process_time()
        part, ids = tokenize_part(part, tokenizer, "parquet" in self.formats)
        # CPU time of the tokenize step, for benchmarks/bench_tokenize.py's in-pipeline row.
        metrics.counter("tokens", "model_load_cpu_us").inc(int((loaded - start) * 1e6))
        metrics.counter("tokens", "encode_cpu_us").inc(int((time.process_time() - loaded) * 1e6))
        metrics.counter("tokens", "encoded_chars").inc(int(pc.sum(part["n_chars"]).as_py() or 0))
        metrics.counter("tokens", "encoded_tokens").inc(int(sum(map(len, ids))))
        outputs = [
            beam.pvalue.TaggedOutput(TOKEN_FILES, f)
            for f in self.write_files(split, shard, ids, tokenizer)
        ]
        if split == "train":
            counts = np.zeros(tokenizer.vocab_size, dtype=np.int64)
            if ids:
                counts += np.bincount(np.concatenate(ids), minlength=tokenizer.vocab_size)
            outputs.append(beam.pvalue.TaggedOutput(ID_COUNTS, IdCounts(counts, len(ids))))
        return part, outputs

    def write_files(self, split: str, shard: int, ids: list[np.ndarray], tokenizer):
        if not ids:
            return
        vocab_size, eos = tokenizer.vocab_size, tokenizer.eos_id
        if "megatron" in self.formats:
            rel = megatron_prefix(split, shard, self.num_shards)
            done = write_megatron(FileSystems.join(self.output_dir, rel), ids, vocab_size, eos)
            beam.metrics.Metrics.counter("write", "megatron_shards").inc()
            yield TokenFile(
                "megatron",
                split,
                shard,
                rel,
                done["documents"],
                done["tokens"],
                {rel + ext: digest for ext, digest in done["sha256"].items()},
            )
        if "llmc" in self.formats:
            rel = llmc_path(split, shard)
            done = write_llmc(FileSystems.join(self.output_dir, rel), ids, vocab_size, eos)
            beam.metrics.Metrics.counter("write", "llmc_shards").inc()
            yield TokenFile(
                "llmc", split, shard, rel, done["documents"], done["tokens"], {rel: done["sha256"]}
            )
