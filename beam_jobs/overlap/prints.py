"""Every document that will be written, with its fingerprints: read shard by shard from the
spill files exactly as the shard writer reads them (removed ids dropped, the first row of a
repeated id), so the split and the report see the documents the shards will hold.

Only references to row groups and removed ids are shuffled to get here; what leaves is one
small `DocPrint` per document (its fingerprints as bytes, a few per hundred characters).
"""

from __future__ import annotations

from typing import NamedTuple

import apache_beam as beam
import numpy as np
import pyarrow as pa

from beam_jobs.dedup.ids import first_per_id
from beam_jobs.io.parquet import EveryShard
from beam_jobs.io.shards import _drop, _spill_parts
from beam_jobs.io.spill import read_spill_rows
from beam_jobs.overlap.config import OverlapConfig
from beam_jobs.overlap.evalsets import EvalIndex
from beam_jobs.overlap.fingerprints import select, to_bytes, window_hashes
from beam_jobs.overlap.mask import mask
from beam_jobs.split.assign import shard_of
from beam_jobs.text.normalize import dedup_key
from beam_jobs.tokens.tokenizers import get_tokenizer

NS = "overlap"
COLUMNS = ["id", "text", "n_chars", "file", "line"]


class DocPrint(NamedTuple):
    """A document to be written: its fingerprints (sorted distinct uint64, as bytes) and,
    with decontamination, the positions of its windows found in the evaluation index
    (int64 bytes) and the (set, item, share of its windows found) it is charged to, or
    None."""

    id: str
    n_chars: int
    file: str
    prints: bytes
    found: bytes = b""
    contam: tuple | None = None
    masked: tuple | None = None  # mask mode: (text, n_chars, n_tokens); None: remove it


class _ShardPrintsFn(beam.DoFn):
    def __init__(
        self,
        output_dir: str,
        config: OverlapConfig,
        index: EvalIndex | None,
        mode: str = "remove",
        tokenizer: str = "char",
    ):
        self.output_dir, self.config, self.index = output_dir, config, index
        self.mode, self.tokenizer_name = mode, tokenizer

    def setup(self):
        self.tokenizer = get_tokenizer(self.tokenizer_name)
        self.docs = beam.metrics.Metrics.counter(NS, "documents")
        self.prints = beam.metrics.Metrics.counter(NS, "fingerprints")
        self.unmeasured = beam.metrics.Metrics.counter(NS, "documents_without_fingerprints")

    def process(self, item):
        _, groups = item
        removed = pa.array(
            sorted({r for r in groups["removed"] if r is not None}), type=pa.string()
        )
        by_file: dict[str, list[int]] = {}
        for path, group in groups["part"]:
            by_file.setdefault(path, []).append(group)
        tables = [
            _drop(
                read_spill_rows(self.output_dir, path, sorted(by_file[path]), columns=COLUMNS),
                removed,
            )
            for path in sorted(by_file)
        ]
        if not tables:
            return
        # Every row of an id is in this shard: the first one is the writer's (io/shards.py).
        table = first_per_id(pa.concat_tables(tables))
        del tables
        cols = [table[c].to_pylist() for c in COLUMNS]
        width, sample = self.config.width, self.config.sample
        for doc_id, text, n_chars, file, _line in zip(*cols):
            key = dedup_key(text)
            prints = select(window_hashes(key, width), sample) if self.config.active else None
            found, contam, masked = b"", None, None
            if self.index is not None:
                hits, windows = self.index.hits(key)
                if len(hits):
                    found = hits.astype("<i8").tobytes()
                    contam = (*self.index.first_item(hits), len(hits) / windows)
                    masked = self._masked(text) if self.mode == "mask" else None
            self.docs.inc()
            if prints is not None:
                self.prints.inc(len(prints))
                if not len(prints):
                    self.unmeasured.inc()
            yield DocPrint(
                doc_id,
                n_chars,
                file,
                b"" if prints is None else to_bytes(prints),
                found,
                contam,
                masked,
            )

    def _masked(self, text: str) -> tuple | None:
        """(masked text, n_chars, n_tokens), or None to remove the document instead (its key
        cannot be traced back to the text, or nothing is left)."""
        out = mask(text, self.index)
        if out is None or not out[0].strip():
            return None
        return out[0], len(out[0]), self.tokenizer.count(out[0])


class ShardPrints(beam.PTransform):
    """(`SpillFile`s, removed ids) → a `DocPrint` for every document the shards will hold."""

    def __init__(
        self,
        output_dir: str,
        num_shards: int,
        config: OverlapConfig,
        index: EvalIndex | None = None,
        mode: str = "remove",
        tokenizer: str = "char",
    ):
        super().__init__()
        self.num_shards = num_shards
        self.fn = _ShardPrintsFn(output_dir, config, index, mode, tokenizer)

    def expand(self, inputs):
        spill_files, removed_ids = inputs
        num_shards = self.num_shards
        parts = spill_files | "RowGroups" >> beam.FlatMap(_spill_parts)
        removed = removed_ids | "RemovedByShard" >> beam.Map(lambda i: (shard_of(i, num_shards), i))
        every = spill_files.pipeline | "EveryShard" >> EveryShard(num_shards)
        return (
            {"part": parts, "removed": (removed, every) | "AllShards" >> beam.Flatten()}
            | "JoinShard" >> beam.CoGroupByKey()
            | "ReadShard" >> beam.ParDo(self.fn)
        )


def found_positions(doc: DocPrint) -> np.ndarray:
    return np.frombuffer(doc.found, dtype="<i8")
