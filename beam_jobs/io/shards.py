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
INPUT_IDS = "input_ids"  # the token-ids column (beam_jobs.io.input_ids), when written


def _drop(table: pa.Table, ids: pa.Array) -> pa.Table:
    return table.filter(pc.invert(pc.is_in(table["id"], value_set=ids)))


def _spill_parts(info: SpillFile):
    """A spill file → (shard, (path, row group)) for each of its row groups."""
    for group, shard in enumerate(info.shards):
        yield shard, (info.path, group)


class WriteSplitFn(beam.DoFn):
    """(shard, {'part': row-group refs, 'removed': ids[, 'moved': (id, split)][, 'masked':
    (id, (text, n_chars, n_tokens))]}) → the shard's `KeptDocument`s; its train and val
    `ShardFile`s on `shards` (and token files on their tags, with `tokens`)."""

    def __init__(
        self,
        output_dir: str,
        num_shards: int,
        val_fraction: float,
        seed: str,
        row_group_size: int,
        web: bool = False,
        perplexity: bool = False,
        tokens=None,
    ):
        self.output_dir, self.num_shards = output_dir, num_shards
        self.val_fraction, self.seed, self.row_group_size = val_fraction, seed, row_group_size
        self.web, self.perplexity = web, perplexity
        self.tokens = tokens  # beam_jobs.io.token_shards.TokenShards, or None

    def setup(self):
        self.written = beam.metrics.Metrics.counter("write", "split_shards")

    def kept_table(self, groups, columns: list[str] | None = None) -> pa.Table:
        """The shard's documents from its spill row groups: removed ids dropped, one row per
        id, sorted by id, decontaminated texts masked."""
        removed = pa.array(
            sorted({r for r in groups["removed"] if r is not None}), type=pa.string()
        )
        masked = dict(groups.get("masked", ()))  # decontaminated texts (overlap/mask.py)
        if masked and columns is not None:
            columns = [*columns, *(c for c in ("n_chars", "n_tokens") if c not in columns)]
        by_file: dict[str, list[int]] = {}
        for path, group in groups["part"]:
            by_file.setdefault(path, []).append(group)
        # Removed documents are dropped file by file, so the shard is held once, kept only.
        tables = [
            _drop(read_spill_rows(self.output_dir, path, sorted(by_file[path]), columns), removed)
            for path in sorted(by_file)
        ]
        empty = spill_schema(self.web, self.perplexity).empty_table()
        table = pa.concat_tables(tables) if tables else empty.select(columns or empty.column_names)
        del tables
        table = first_per_id(table)  # later records of a repeated id are dead letters
        return apply_masks(table, masked) if masked else table

    def split_parts(self, table: pa.Table, groups):
        """(split name, its rows) for train, then val: a moved id (the overlap components'
        split, overlap/) takes the given split instead of its own hash's."""
        moved = dict(groups.get("moved", ()))
        is_val = pa.array(
            [
                (moved.get(i) or assign_split(i, self.val_fraction, self.seed)) == "val"
                for i in table["id"].to_pylist()
            ],
            type=pa.bool_(),
        )
        for name, mask in (("train", pc.invert(is_val)), ("val", is_val)):
            yield name, table.filter(mask)

    def process(self, item, tokenizer=None):
        shard, groups = item
        for name, part in self.split_parts(self.kept_table(groups), groups):
            if self.tokens is not None:  # ids, n_tokens, input_ids, token files
                part, outputs = self.tokens.process(name, shard, part, tokenizer)
                yield from outputs
            yield beam.pvalue.TaggedOutput(SHARDS, self._write(name, shard, part))
            for start in range(0, part.num_rows, EMIT_ROWS):  # a slice of Python strings at a time
                piece = part.slice(start, EMIT_ROWS)
                cols = [piece[c].to_pylist() for c in ("text", "n_chars", "n_tokens", "file")]
                for text, n_chars, n_tokens, file in zip(*cols):
                    yield KeptDocument(name, text, n_chars, n_tokens, file)

    def _write(self, split: str, shard: int, part: pa.Table) -> ShardFile:
        rel = posixpath.join(split, shard_name(split, shard, self.num_shards))
        schema = doc_schema(self.web, self.perplexity)
        if INPUT_IDS in part.column_names:
            schema = schema.append(part.schema.field(INPUT_IDS))
        table = pa.table({name: part[name] for name in schema.names}, schema=schema)
        sha256 = write_table(FileSystems.join(self.output_dir, rel), table, self.row_group_size)
        self.written.inc()
        return ShardFile(
            rel,
            shard,
            table.num_rows,
            split,
            int(pc.sum(table["n_tokens"]).as_py() or 0),
            int(pc.sum(table["n_chars"]).as_py() or 0),
            sha256,
        )


class WriteSplitShards(beam.PTransform):
    """(`SpillFile`s, removed ids[, moved (id, split)[, masked (id, (text, n_chars,
    n_tokens))]]) → {'kept': `KeptDocument`s, 'shards': train and val `ShardFile`s, and the
    token files' tags with `with_tokens`}; every shard of both splits is written."""

    def __init__(
        self,
        output_dir: str,
        num_shards: int,
        val_fraction: float,
        seed: str,
        row_group_size: int,
        web: bool = False,
        perplexity: bool = False,
    ):
        super().__init__()
        self.num_shards = num_shards
        self.fn = WriteSplitFn(
            output_dir, num_shards, val_fraction, seed, row_group_size, web, perplexity
        )
        self.tokenizer = None  # a PCollection of one tokenizer, for `fn.tokens`

    def with_tokens(self, tokens, tokenizer) -> WriteSplitShards:
        """Write token ids too: `tokens` (a `TokenShards`) with `tokenizer` as side input."""
        self.fn.tokens, self.tokenizer = tokens, tokenizer
        return self

    def expand(self, inputs):
        joined = inputs | "JoinShards" >> JoinShards(self.num_shards)
        side = (
            {} if self.tokenizer is None else {"tokenizer": beam.pvalue.AsSingleton(self.tokenizer)}
        )
        tags = (SHARDS, *(self.fn.tokens.tags if self.fn.tokens is not None else ()))
        out = joined | "WriteSplits" >> beam.ParDo(self.fn, **side).with_outputs(*tags, main="kept")
        return {"kept": out.kept, **{tag: out[tag] for tag in tags}}


class JoinShards(beam.PTransform):
    """(`SpillFile`s, removed ids[, moved[, masked]]) → (shard, {'part': row-group refs,
    'removed': ids, ...}) for every shard, as `WriteSplitFn` takes it."""

    def __init__(self, num_shards: int):
        super().__init__()
        self.num_shards = num_shards

    def expand(self, inputs):
        spill_files, removed_ids, *extra = inputs
        num_shards = self.num_shards
        parts = spill_files | "RowGroups" >> beam.FlatMap(_spill_parts)
        removed = removed_ids | "RemovedByShard" >> beam.Map(lambda i: (shard_of(i, num_shards), i))
        every = spill_files.pipeline | "EveryShard" >> EveryShard(num_shards)
        joined = {"part": parts, "removed": (removed, every) | "AllShards" >> beam.Flatten()}
        for name, pcoll in zip(("moved", "masked"), extra):
            joined[name] = pcoll | f"{name.title()}ByShard" >> beam.Map(
                lambda kv: (shard_of(kv[0], num_shards), kv)
            )
        return joined | "JoinShard" >> beam.CoGroupByKey()
