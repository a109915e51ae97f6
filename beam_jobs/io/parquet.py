"""Deterministic Parquet shards: the shard of a row is a hash of its key, rows are sorted in
their shard, and every shard exists even when empty. The same input and options therefore give
byte-identical files whatever the runner or the number of workers.

Files are written under a temporary name and renamed, so a reader never sees half a shard.
A shard is built in one worker's memory: choose the shard count so that a shard is a few
hundred MB at most.
"""

from __future__ import annotations

import hashlib
import posixpath
from typing import NamedTuple

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from beam_jobs.io.fs import atomic_create
from beam_jobs.split.assign import shard_of


class TableFile(NamedTuple):
    """A written shard of a table (duplicates, rejected, n-grams)."""

    path: str  # relative to the output directory
    shard: int
    rows: int


def shard_name(prefix: str, shard: int, num_shards: int) -> str:
    return f"{prefix}-{shard:05d}-of-{num_shards:05d}.parquet"


class _HashingWriter:
    """A write-only file that hashes what passes through it (Parquet writes sequentially)."""

    closed = False

    def __init__(self, handle):
        self.handle, self.digest, self.position = handle, hashlib.sha256(), 0

    def write(self, data) -> int:
        self.digest.update(data)
        self.position += len(data)
        return self.handle.write(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        self.handle.flush()

    def close(self) -> None:  # the handle is closed by its owner
        pass


def write_table(path: str, table: pa.Table, row_group_size: int) -> str:
    """Write `table` as zstd Parquet at `path`, whole or not at all; returns the file's
    sha256, which the manifest records so a reader can tell the shard is the one written."""
    with atomic_create(path) as handle:
        hashing = _HashingWriter(handle)
        pq.write_table(
            table, hashing, compression="zstd", row_group_size=row_group_size, write_statistics=True
        )
    return hashing.digest.hexdigest()


class EveryShard(beam.PTransform):
    """PBegin → (shard, None) for shards 0..n-1: flattened with the keyed data before a
    grouping, it makes every shard a group, so every shard's file is written even when no
    row falls into it. Consumers skip the None."""

    def __init__(self, num_shards: int):
        super().__init__()
        self.num_shards = num_shards

    def expand(self, pbegin):
        return (
            pbegin
            | "Shards" >> beam.Create(range(self.num_shards))
            | "NoRows" >> beam.Map(lambda shard: (shard, None))
        )


class WriteShardedParquet(beam.PTransform):
    """Records (NamedTuples with the schema's fields) → Parquet shards
    `DIR/SUBDIR/PREFIX-SSSSS-of-NNNNN.parquet`, sorted by `sort_key` (a field or a tuple of
    fields; nulls first), sharded by a hash of `shard_key`; outputs one `TableFile` per shard."""

    def __init__(
        self,
        output_dir: str,
        subdir: str,
        prefix: str,
        num_shards: int,
        schema: pa.Schema,
        sort_key: str | tuple[str, ...] = "id",
        shard_key: str = "id",
        row_group_size: int = 1024,
    ):
        super().__init__()
        self.output_dir, self.subdir, self.prefix = output_dir, subdir, prefix
        self.num_shards, self.schema, self.row_group_size = num_shards, schema, row_group_size
        self.sort_key = (sort_key,) if isinstance(sort_key, str) else tuple(sort_key)
        self.shard_key = shard_key

    def expand(self, rows):
        num_shards, shard_key = self.num_shards, self.shard_key
        keyed = rows | "KeyByShard" >> beam.Map(
            lambda row: (shard_of(str(getattr(row, shard_key)), num_shards), row)
        )
        return (
            (keyed, rows.pipeline | "AllShards" >> EveryShard(num_shards))
            | "Flatten" >> beam.Flatten()
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShard" >> beam.MapTuple(self._write)
        )

    def _write(self, shard: int, rows) -> TableFile:
        def order(row):  # nulls first
            return tuple((getattr(row, n) is not None, getattr(row, n)) for n in self.sort_key)

        rows = sorted((r for r in rows if r is not None), key=order)
        columns = {name: [getattr(r, name) for r in rows] for name in self.schema.names}
        table = pa.table(columns, schema=self.schema)
        rel = posixpath.join(self.subdir, shard_name(self.prefix, shard, self.num_shards))
        write_table(FileSystems.join(self.output_dir, rel), table, self.row_group_size)
        beam.metrics.Metrics.counter("write", f"{self.subdir}_shards").inc()
        return TableFile(rel, shard, len(rows))
