"""N-gram counts of the train split, of any order, with bounded memory and count pruning.

    texts → batches of ~1M characters → CountBatches (per order: hash, sort, count; a
    buffer of at most --ngram-buffer-mb per worker, flushed as sorted partial tables per
    shard) → GroupByKey(shard) → WriteNgramShard (merge the partials, continuation counts and
    pruning, `ngrams/ngrams-S-of-N.parquet` and `ngrams/_continuation/…`) → the statistics of
    every shard summed into `ngrams/_pruning.json` → one `TableFile` per shard.

The buffer replaces Beam's combiner lifting, whose pre-shuffle accumulator grows with every
distinct n-gram a worker sees (one key per shard, so nothing ever evicts it); here a worker
merges what it holds when the buffer is full and sends it on when merging no longer halves
it. A shard's final merge holds that shard's distinct n-grams, 1/--ngram-shards of the
corpus's. Sharding by the last n-1 tokens (`counting.shard_keys`) puts every left extension
of an n-gram on one shard, where its continuation count is complete (`pruning`).
"""

from __future__ import annotations

import posixpath

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from beam_jobs.counts import counting, pruning
from beam_jobs.counts.ngram_config import DEFAULT_BUFFER_MB
from beam_jobs.io.fs import write_json
from beam_jobs.io.parquet import EveryShard, TableFile, shard_name, write_table
from beam_jobs.records import NGRAM_SCHEMA

BATCH_CHARS = 1 << 20
NS = "ngrams"
CONTINUATION_DIR = "ngrams/_continuation"
PRUNING_JSON = "ngrams/_pruning.json"
CONTINUATION_SCHEMA = pa.schema(
    [
        ("order", pa.int32()),
        ("ngram", pa.list_(pa.string())),
        ("continuation", pa.int64()),
        ("pruned", pa.int64()),
    ]
)


class TableBuffer:
    """Tables per (shard, order), merged when they pass `limit` bytes."""

    def __init__(self, limit: int):
        self.limit, self.parts, self.bytes = limit, {}, 0

    def add(self, key, table: counting.Table) -> bool:
        """Add a part; True when the buffer is still full after merging (time to flush)."""
        self.parts.setdefault(key, []).append(table)
        self.bytes += table.nbytes
        if self.bytes <= self.limit:
            return False
        self.compact()
        beam.metrics.Metrics.counter(NS, "buffer_merges").inc()
        return self.bytes > self.limit // 2

    def compact(self) -> None:
        self.parts = {k: [counting.merge_tables(v)] for k, v in self.parts.items()}
        self.bytes = sum(p[0].nbytes for p in self.parts.values())

    def drain(self):
        """(key, merged table) for every key; empties the buffer."""
        parts, self.parts, self.bytes = self.parts, {}, 0
        for key in sorted(parts):
            yield key, counting.merge_tables(parts[key])


class CountBatches(beam.DoFn):
    """Batches of texts → (shard, (order, partial Table)), flushed when the buffer is full and
    at the end of each bundle."""

    def __init__(self, codes: counting.TokenCodes, order: int, num_shards: int, buffer_bytes: int):
        self.codes, self.order, self.num_shards = codes, order, num_shards
        self.buffer_bytes = buffer_bytes

    def start_bundle(self):
        self.buffer = TableBuffer(self.buffer_bytes)

    def process(self, batch):
        full = False
        tables = counting.count_sequences(self.codes.sequences(batch), self.order)
        for n, table in enumerate(tables, 1):
            for shard, part in counting.split_by_shard(table, self.num_shards):
                full |= self.buffer.add((shard, n), part)
        if full:
            beam.metrics.Metrics.counter(NS, "buffer_flushes").inc()
            yield from self._flush()

    def finish_bundle(self):
        for item in self._flush():
            yield WindowedValue(item, GlobalWindow().max_timestamp(), [GlobalWindow()])

    def _flush(self):
        for (shard, n), table in self.buffer.drain():
            yield shard, (n, table)


class CountNgrams(beam.PTransform):
    """Train texts → Parquet n-gram tables under DIR/ngrams; outputs one `TableFile` per
    shard, once `ngrams/_pruning.json` is written."""

    def __init__(
        self,
        output_dir: str,
        tokenizer,
        order: int,
        num_shards: int,
        row_group_size: int = 65536,
        min_counts: tuple[int, ...] = (1,),
        buffer_mb: float = DEFAULT_BUFFER_MB,
        tokenizer_dir: str | None = None,
    ):
        super().__init__()
        self.output_dir, self.order, self.num_shards = output_dir, order, num_shards
        self.row_group_size = row_group_size
        self.codes = counting.TokenCodes(tokenizer, tokenizer_dir)
        self.thresholds = pruning.thresholds(tuple(min_counts), order)
        self.prune = pruning.prunes(tuple(min_counts), order)
        self.buffer_bytes = int(buffer_mb * (1 << 20))

    def expand(self, texts):
        batches = texts | "Batch" >> beam.BatchElements(
            min_batch_size=1 << 16, max_batch_size=BATCH_CHARS, element_size_fn=len
        )
        parts = batches | "CountBatches" >> beam.ParDo(
            CountBatches(self.codes, self.order, self.num_shards, self.buffer_bytes)
        )
        empty = texts.pipeline | "AllNgramShards" >> EveryShard(self.num_shards)
        written = (
            (parts, empty)
            | "FlattenShards" >> beam.Flatten()
            | "GroupShards" >> beam.GroupByKey()
            | "WriteNgramShard" >> beam.MapTuple(self._write_shard)
        )
        summary = (
            written
            | "ShardStats" >> beam.Map(lambda w: w[1])
            | "SumStats" >> beam.combiners.ToList()
            | "WriteSummary" >> beam.Map(self._write_summary)
        )
        return (
            written
            | "Files" >> beam.Map(lambda w: w[0])
            | "AfterSummary" >> beam.Map(lambda f, _: f, beam.pvalue.AsSingleton(summary))
        )

    def _write_shard(self, shard: int, parts):
        merged = TableBuffer(self.buffer_bytes)
        for part in parts:
            if part is not None:
                n, table = part
                merged.add(n, table)
        by_order = dict(merged.drain())
        tables = [by_order.get(n) for n in range(1, self.order + 1)]
        result = pruning.finalize_shard(tables, self.thresholds, self.codes.bos)
        rel = "ngrams/" + shard_name("ngrams", shard, self.num_shards)
        write_table(
            FileSystems.join(self.output_dir, rel), self._raw_table(result.raw), self.row_group_size
        )
        if self.prune:
            cont = self._continuation_table(result)
            path = posixpath.join(
                CONTINUATION_DIR, shard_name("continuation", shard, self.num_shards)
            )
            write_table(FileSystems.join(self.output_dir, path), cont, self.row_group_size)
        rows = sum(len(t.counts) for t in result.raw)
        counters = beam.metrics.Metrics
        counters.counter("write", "ngram_shards").inc()
        counters.counter(NS, "distinct").inc(sum(s.distinct for s in result.stats))
        counters.counter(NS, "kept").inc(rows)
        counters.counter(NS, "pruned").inc(sum(s.distinct - s.kept for s in result.stats))
        return TableFile(rel, shard, rows), result.stats

    def _raw_table(self, tables: list[counting.Table]) -> pa.Table:
        return self._table(tables, {"count": [t.counts for t in tables]}, NGRAM_SCHEMA)

    def _continuation_table(self, result: pruning.ShardResult) -> pa.Table:
        tables = [t for t in result.continuation if t is not None]
        masses = [m for m in result.pruned_mass if m is not None]
        return self._table(
            tables,
            {"continuation": [t.counts for t in tables], "pruned": masses},
            CONTINUATION_SCHEMA,
        )

    def _table(self, tables, columns: dict, schema: pa.Schema) -> pa.Table:
        orders = [pa.array(np.full(len(t.counts), t.grams.shape[1], np.int32)) for t in tables]
        data = {
            "order": pa.chunked_array(orders, pa.int32()),
            "ngram": pa.chunked_array(
                [self.codes.list_array(t.grams) for t in tables], pa.list_(pa.string())
            ),
        }
        for name, values in columns.items():
            data[name] = pa.chunked_array(
                [pa.array(np.asarray(v, np.int64)) for v in values], pa.int64()
            )
        return pa.table(data, schema=schema)

    def _write_summary(self, stats: list) -> dict:
        continuation = (
            [
                posixpath.join(CONTINUATION_DIR, shard_name("continuation", s, self.num_shards))
                for s in range(self.num_shards)
            ]
            if self.prune
            else []
        )
        body = pruning.stats_json(pruning.merge_stats(stats), self.thresholds, continuation)
        write_json(FileSystems.join(self.output_dir, PRUNING_JSON), body)
        return body
