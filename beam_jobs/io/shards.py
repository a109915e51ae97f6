"""The train and val shards, built shard by shard from the spill files: a shard's writer reads
its row groups of every spill file, drops the removed ids, sorts by id, splits and writes.

Only references to row groups and removed ids are shuffled (both small), never documents. The
shard of a document and its split are hashes of its id, so the files are byte-identical
whatever the runner, the number of workers or the way documents fell into spill files. A
shard is held in one worker's memory while it is written: `--num-shards` bounds that.
"""

from __future__ import annotations

import posixpath

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.io.filesystems import FileSystems

from beam_jobs.dedup.ids import first_per_id
from beam_jobs.io.parquet import EveryShard, shard_name, write_table
from beam_jobs.io.spill import read_spill_rows
from beam_jobs.overlap.mask import apply_masks
from beam_jobs.records import KeptDocument, ShardFile, SpillFile, doc_schema, spill_schema
from beam_jobs.split.assign import assign_split, shard_of

SHARDS = "shards"
EMIT_ROWS = 1024


def _drop(table: pa.Table, ids: pa.Array) -> pa.Table:
    return table.filter(pc.invert(pc.is_in(table["id"], value_set=ids)))


def _spill_parts(info: SpillFile):
    """A spill file → (shard, (path, row group)) for each of its row groups."""
    for group, shard in enumerate(info.shards):
        yield shard, (info.path, group)


class WriteSplitFn(beam.DoFn):
    """(shard, {'part': row-group refs, 'removed': ids}) → the shard's `KeptDocument`s; its
    train and val `ShardFile`s on `shards`."""

    def __init__(self, output_dir: str, num_shards: int, val_fraction: float, seed: str,
                 row_group_size: int, web: bool = False, perplexity: bool = False):
        self.output_dir, self.num_shards = output_dir, num_shards
        self.val_fraction, self.seed, self.row_group_size = val_fraction, seed, row_group_size
        self.web, self.perplexity = web, perplexity

    def setup(self):
        self.written = beam.metrics.Metrics.counter("write", "split_shards")

    def process(self, item):
        shard, groups = item
        removed = pa.array(sorted({r for r in groups["removed"] if r is not None}),
                           type=pa.string())
        by_file: dict[str, list[int]] = {}
        for path, group in groups["part"]:
            by_file.setdefault(path, []).append(group)
        # Removed documents are dropped file by file, so the shard is held once, kept only.
        tables = [_drop(read_spill_rows(self.output_dir, path, sorted(by_file[path])), removed)
                  for path in sorted(by_file)]
        empty = spill_schema(self.web, self.perplexity).empty_table()
        table = pa.concat_tables(tables) if tables else empty
        del tables
        table = first_per_id(table)  # later records of a repeated id are dead letters
        moved = dict(groups.get("moved", ()))  # the overlap components' splits (overlap/)
        masked = dict(groups.get("masked", ()))  # decontaminated texts (overlap/mask.py)
        if masked:
            table = apply_masks(table, masked)
        is_val = pa.array([(moved.get(i) or assign_split(i, self.val_fraction, self.seed))
                           == "val" for i in table["id"].to_pylist()], type=pa.bool_())
        for name, mask in (("train", pc.invert(is_val)), ("val", is_val)):
            part = table.filter(mask)
            yield beam.pvalue.TaggedOutput(SHARDS, self._write(name, shard, part))
            for start in range(0, part.num_rows, EMIT_ROWS):  # a slice of Python strings at a time
                piece = part.slice(start, EMIT_ROWS)
                cols = [piece[c].to_pylist() for c in ("text", "n_chars", "n_tokens", "file")]
                for text, n_chars, n_tokens, file in zip(*cols):
                    yield KeptDocument(name, text, n_chars, n_tokens, file)

    def _write(self, split: str, shard: int, part: pa.Table) -> ShardFile:
        rel = posixpath.join(split, shard_name(split, shard, self.num_shards))
        schema = doc_schema(self.web, self.perplexity)
        table = pa.table({name: part[name] for name in schema.names}, schema=schema)
        sha256 = write_table(FileSystems.join(self.output_dir, rel), table, self.row_group_size)
        self.written.inc()
        return ShardFile(rel, shard, table.num_rows, split,
                         int(pc.sum(table["n_tokens"]).as_py() or 0),
                         int(pc.sum(table["n_chars"]).as_py() or 0), sha256)


class WriteSplitShards(beam.PTransform):
    """(`SpillFile`s, removed ids[, moved (id, split)[, masked (id, (text, n_chars,
    n_tokens))]]) → {'kept': `KeptDocument`s, 'shards': train and val `ShardFile`s}; every
    shard of both splits is written. A moved id takes the given split instead of its own
    hash's; a masked one the given text."""

    def __init__(self, output_dir: str, num_shards: int, val_fraction: float, seed: str,
                 row_group_size: int, web: bool = False, perplexity: bool = False):
        super().__init__()
        self.num_shards = num_shards
        self.fn = WriteSplitFn(output_dir, num_shards, val_fraction, seed, row_group_size, web,
                               perplexity)

    def expand(self, inputs):
        spill_files, removed_ids, *extra = inputs
        num_shards = self.num_shards
        parts = spill_files | "RowGroups" >> beam.FlatMap(_spill_parts)
        removed = removed_ids | "RemovedByShard" >> beam.Map(
            lambda i: (shard_of(i, num_shards), i))
        every = spill_files.pipeline | "EveryShard" >> EveryShard(num_shards)
        joined = {"part": parts, "removed": (removed, every) | "AllShards" >> beam.Flatten()}
        for name, pcoll in zip(("moved", "masked"), extra):
            joined[name] = pcoll | f"{name.title()}ByShard" >> beam.Map(
                lambda kv: (shard_of(kv[0], num_shards), kv))
        out = (joined
               | "JoinShard" >> beam.CoGroupByKey()
               | "WriteSplits" >> beam.ParDo(self.fn).with_outputs(SHARDS, main="kept"))
        return {"kept": out.kept, "shards": out[SHARDS]}
