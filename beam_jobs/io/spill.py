"""Documents stay where they were cleaned: written to Parquet spill files by the worker that
cleaned them, while only small records (id, key hash, signature, length, file, spill file) go
on through the dedup shuffles. The final shards are then built per shard from the spill files,
so no document crosses a shuffle.

A spill file holds one row group per output shard (`shard_of(id)`), so the writer of shard s
reads only its row groups. Spill files are named at random: which documents share one depends
on the runner's bundles, but nothing downstream depends on that (every shard is sorted by id),
and a retried bundle's file is simply never referenced (`remove_unreferenced` cleans up).
"""

from __future__ import annotations

import posixpath
import uuid

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from beam_jobs.dedup.exact import key_hash
from beam_jobs.io.fs import atomic_create
from beam_jobs.records import WEB_FIELDS, DedupRecord, Document, SpillFile, spill_schema
from beam_jobs.split.assign import shard_of
from beam_jobs.text.normalize import dedup_key

SPILL_FILES = "spill_files"
_NO_WEB = (None,) * len(WEB_FIELDS)  # a document that is not a web page, in a web run
# Characters of text a worker buffers before it writes a spill file. Measured (tracemalloc in
# the SDK workers, 4x corpus): the buffer and its Arrow table were the workers' peak, and at
# 64 M characters it was never reached, so the buffer grew with each worker's share.
SPILL_BYTES = 16 << 20


class SpillFn(beam.DoFn):
    """`Document` → `DedupRecord`; the document goes into the current spill file, written when
    `max_bytes` of text are buffered and at the end of the bundle. Each written file comes out
    on `spill_files` as a `SpillFile`."""

    def __init__(
        self,
        output_dir: str,
        subdir: str,
        num_shards: int,
        max_bytes: int = SPILL_BYTES,
        web: bool = False,
        perplexity: bool = False,
    ):
        self.output_dir, self.subdir = output_dir, subdir
        self.num_shards, self.max_bytes, self.web = num_shards, max_bytes, web
        self.perplexity = perplexity
        self.schema = spill_schema(web, perplexity)

    def setup(self):
        self.docs = beam.metrics.Metrics.counter("spill", "documents")
        self.files = beam.metrics.Metrics.counter("spill", "files")

    def start_bundle(self):
        self._new_buffer()

    def _new_buffer(self):
        self.rel = posixpath.join(self.subdir, f"spill-{uuid.uuid4().hex}.parquet")
        self.rows, self.size = [], 0

    def process(self, doc: Document):
        # Only what the spill file stores (SPILL_SCHEMA's order): not the dedup key, a second
        # copy of the text.
        row = (doc.id, doc.text, doc.n_tokens, doc.n_chars, doc.source)
        if self.web:
            row += doc.web or _NO_WEB
        if self.perplexity:
            row += (doc.perplexity,)
        self.rows.append((*row, doc.file, doc.line))
        self.size += len(doc.text)
        self.docs.inc()
        yield DedupRecord(
            doc.id, key_hash(doc.key), doc.n_chars, doc.file, doc.line, self.rel, doc.sig
        )
        if self.size >= self.max_bytes:
            yield beam.pvalue.TaggedOutput(SPILL_FILES, self._flush())

    def finish_bundle(self):
        if self.rows:
            info = self._flush()
            yield beam.pvalue.TaggedOutput(
                SPILL_FILES, WindowedValue(info, GlobalWindow().max_timestamp(), [GlobalWindow()])
            )

    def _flush(self) -> SpillFile:
        columns = dict(zip(self.schema.names[:-1], map(list, zip(*self.rows))))
        columns["shard"] = [shard_of(doc_id, self.num_shards) for doc_id in columns["id"]]
        table = pa.table(columns, schema=self.schema)
        table = table.take(pc.sort_indices(table, [("shard", "ascending"), ("id", "ascending")]))
        shards = []
        with atomic_create(FileSystems.join(self.output_dir, self.rel)) as handle:
            with pq.ParquetWriter(handle, self.schema, compression="zstd") as writer:
                for shard in pc.unique(table["shard"]).to_pylist():
                    part = table.filter(pc.equal(table["shard"], shard))
                    writer.write_table(part, row_group_size=max(1, part.num_rows))
                    shards.append(shard)
        self.files.inc()
        info = SpillFile(self.rel, table.num_rows, shards)
        self._new_buffer()
        return info


class SpillDocuments(beam.PTransform):
    """`Document`s → {'records': `DedupRecord`s, 'files': one `SpillFile` per spill file}."""

    def __init__(
        self,
        output_dir: str,
        subdir: str,
        num_shards: int,
        max_bytes: int = SPILL_BYTES,
        web: bool = False,
        perplexity: bool = False,
    ):
        super().__init__()
        self.fn = SpillFn(output_dir, subdir, num_shards, max_bytes, web, perplexity)

    def expand(self, docs):
        out = docs | "Spill" >> beam.ParDo(self.fn).with_outputs(SPILL_FILES, main="records")
        return {"records": out.records, "files": out[SPILL_FILES]}


def read_spill_rows(
    output_dir: str, rel: str, row_groups: list[int] | None = None, columns: list[str] | None = None
) -> pa.Table:
    """Row groups (all when None) of a spill file, as an Arrow table."""
    with FileSystems.open(FileSystems.join(output_dir, rel)) as handle:
        parquet = pq.ParquetFile(handle)
        if row_groups is None:
            row_groups = list(range(parquet.num_row_groups))
        return parquet.read_row_groups(row_groups, columns=columns)


def remove_unreferenced(output_dir: str, subdir: str, referenced: set[str]) -> int:
    """Delete spill files no finished bundle referenced (left by retried bundles)."""
    pattern = FileSystems.join(output_dir, subdir, "spill-*.parquet*")
    paths = [m.path for r in FileSystems.match([pattern]) for m in r.metadata_list]
    prefix = FileSystems.join(output_dir, "")
    stale = [p for p in paths if p[len(prefix) :].lstrip("/") not in referenced]
    if stale:
        FileSystems.delete(stale)
    return len(stale)


def _read_keys(item, output_dir: str):
    rel, wanted = item
    needs = {}
    for doc_id, file, line, payloads in wanted:
        needs.setdefault((doc_id, file, line), []).extend(payloads)
    table = read_spill_rows(output_dir, rel, columns=["id", "file", "line", "text"])
    table = table.filter(pc.is_in(table["id"], value_set=pa.array(sorted({k[0] for k in needs}))))
    columns = [table[c].to_pylist() for c in ("id", "file", "line", "text")]
    for doc_id, file, line, text in zip(*columns):
        payloads = needs.get((doc_id, file, line))  # not a later record of a repeated id
        key = dedup_key(text) if payloads else ""
        if key:
            yield doc_id, (key, payloads)


class KeysAtPlaces(beam.PTransform):
    """Near dedup's exact-verification lookup over the spill files (the contract of
    `dedup.near.verify.JoinLookup`): requests (id, (spill file, input file, line), payload),
    the place from the id's `DedupRecord`, → (id, (dedup key, [payloads])). Each spill file is
    read once for all of its requests; the key is recomputed from the cleaned text, exactly as
    Clean made it."""

    def __init__(self, output_dir: str):
        super().__init__()
        self.output_dir = output_dir

    def expand(self, requests):
        return (
            requests
            | "BySpillFile"
            >> beam.MapTuple(
                lambda doc_id, place, payload: (place[0], (doc_id, *place[1:], [payload]))
            )
            | "GroupBySpillFile" >> beam.GroupByKey()
            | "ReadKeys" >> beam.FlatMap(_read_keys, self.output_dir)
        )
