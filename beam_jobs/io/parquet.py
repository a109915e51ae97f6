"""Deterministic Parquet shards: the shard of a row is a hash of its key, rows are sorted in
their shard, and every shard exists even when empty. The same input and options therefore give
byte-identical files whatever the runner or the number of workers.

Files are written under a temporary name and renamed, so a reader never sees half a shard.
A shard is built in one worker's memory: choose the shard count so that a shard is a few
hundred MB at most.
"""

from __future__ import annotations

import posixpath

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from beam_jobs.io.fs import atomic_create
from beam_jobs.split.assign import shard_of

DOC_SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string()), ("n_tokens", pa.int64()),
                        ("n_chars", pa.int64()), ("source", pa.string())])
DUPLICATE_SCHEMA = pa.schema([("id", pa.string()), ("duplicate_of", pa.string()),
                              ("kind", pa.string()), ("similarity", pa.float64())])
REJECTED_SCHEMA = pa.schema([("file", pa.string()), ("line", pa.int64()), ("id", pa.string()),
                             ("reason", pa.string()), ("detail", pa.string()),
                             ("raw", pa.string())])
NGRAM_SCHEMA = pa.schema([("order", pa.int32()), ("ngram", pa.list_(pa.string())),
                          ("count", pa.int64())])


def shard_name(prefix: str, shard: int, num_shards: int) -> str:
    return f"{prefix}-{shard:05d}-of-{num_shards:05d}.parquet"


def write_table(path: str, table: pa.Table, row_group_size: int) -> None:
    with atomic_create(path) as handle:
        pq.write_table(table, handle, compression="zstd", row_group_size=row_group_size,
                       write_statistics=True)


class WriteShardedParquet(beam.PTransform):
    """dict rows → Parquet shards `DIR/SUBDIR/PREFIX-SSSSS-of-NNNNN.parquet`, sorted by
    `sort_key` (a column or a tuple of columns; nulls first); outputs one {'path', 'shard',
    'rows', ...sums} per shard (path relative)."""

    def __init__(self, output_dir: str, subdir: str, prefix: str, num_shards: int,
                 schema: pa.Schema, sort_key: str | tuple[str, ...] = "id", shard_key: str = "id",
                 sum_columns: tuple[str, ...] = (), row_group_size: int = 1024):
        super().__init__()
        self.output_dir, self.subdir, self.prefix = output_dir, subdir, prefix
        self.num_shards, self.schema, self.row_group_size = num_shards, schema, row_group_size
        self.sort_key, self.shard_key, self.sum_columns = sort_key, shard_key, sum_columns

    def expand(self, rows):
        num_shards, shard_key = self.num_shards, self.shard_key
        keyed = rows | "KeyByShard" >> beam.Map(
            lambda row: (shard_of(str(row[shard_key]), num_shards), row))
        empty = (rows.pipeline | "AllShards" >> beam.Create(range(num_shards))
                 | "NoRows" >> beam.Map(lambda shard: (shard, None)))
        return ((keyed, empty)
                | "Flatten" >> beam.Flatten()
                | "GroupByShard" >> beam.GroupByKey()
                | "WriteShard" >> beam.MapTuple(self._write))

    def _write(self, shard: int, rows) -> dict:
        names = (self.sort_key,) if isinstance(self.sort_key, str) else self.sort_key
        rows = sorted((r for r in rows if r is not None),
                      key=lambda r: tuple((r[n] is not None, r[n]) for n in names))
        columns = {name: [r.get(name) for r in rows] for name in self.schema.names}
        table = pa.table(columns, schema=self.schema)
        rel = posixpath.join(self.subdir, shard_name(self.prefix, shard, self.num_shards))
        write_table(FileSystems.join(self.output_dir, rel), table, self.row_group_size)
        beam.metrics.Metrics.counter("write", f"{self.subdir}_shards").inc()
        info = {"path": rel, "shard": shard, "rows": len(rows)}
        for column in self.sum_columns:
            info[column] = int(sum(columns[column]))
        return info
