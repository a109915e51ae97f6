"""What crosses each stage boundary, as typed records, with the Arrow schemas of what is written.

    input file ─ read ─▶ RawRecord ─ clean ─▶ Document ─ spill ─▶ DedupRecord ─ dedup ─▶ Duplicate
         │                 └▶ Rejected    └▶ Filtered    (the document stays in its spill file)
         └▶ InputFile                                     SpillFile ─ shards ─▶ KeptDocument
    every record's fate ─▶ Event (summed into stats.json)

Records are NamedTuples: Beam's coders move them as fast as the dicts they replace (measured in
docs/architecture.md), and a field's name says what it is at every stage. A transform takes one
record type; tests build the same records as production.
"""

from __future__ import annotations

from typing import NamedTuple

import pyarrow as pa

# ── read ─────────────────────────────────────────────────────────────────────────────────────


class RawRecord(NamedTuple):
    """One input record: its stable id and text as read, where it came from."""

    id: str
    raw_text: str
    source: str
    file: str  # input file, relative to the inputs' common base
    line: int  # 1-based line (text, JSON Lines), 0-based row (Parquet), 1-based record (WARC)
    web: tuple | None = None  # a web page's WEB_FIELDS values, in order


class Rejected(NamedTuple):
    """A record that could not be read (a dead letter): a row of `rejected/`."""

    file: str | None
    line: int | None
    id: str | None
    reason: str
    detail: str
    raw: str
    offset: int | None = None  # byte offset in the file, where the format has records by offset

    def at(self, file: str, line: int) -> Rejected:
        return self._replace(file=file, line=line)


class InputFile(NamedTuple):
    """What reading one input file found: its record count and content digest."""

    path: str
    records: int
    digest: str


# ── clean ────────────────────────────────────────────────────────────────────────────────────


class Filtered(NamedTuple):
    """A document a quality filter removed, and the filter's name."""

    id: str
    file: str
    reason: str


class Document(NamedTuple):
    """A clean document: training `text`, the dedup `key`, its MinHash signature (None when
    near dedup is off or the key is empty)."""

    id: str
    text: str
    key: str
    n_chars: int
    n_tokens: int
    source: str
    file: str
    line: int
    sig: bytes | None = None  # num_perm uint32 values, little-endian (`minhash.sig_bytes`)
    web: tuple | None = None  # as RawRecord.web
    perplexity: float | None = None  # under --perplexity-model (beam_jobs/text/perplexity.py)


# ── dedup ────────────────────────────────────────────────────────────────────────────────────


class DedupRecord(NamedTuple):
    """What dedup needs of a document that stays in its spill file."""

    id: str
    key_hash: bytes
    n_chars: int
    file: str
    line: int
    spill: str  # the spill file holding the document, relative to the output directory
    sig: bytes | None = None  # as Document.sig


class Duplicate(NamedTuple):
    """A removed document and the kept one it duplicates: a row of `duplicates/`."""

    id: str
    duplicate_of: str
    kind: str  # exact or near
    similarity: float
    file: str | None  # input file of the removed document (per-file accounting)


# ── shards ───────────────────────────────────────────────────────────────────────────────────


class SpillFile(NamedTuple):
    """A written spill file: its rows and the output shards of its row groups, in order."""

    path: str
    rows: int
    shards: list


class ShardFile(NamedTuple):
    """A written train or val shard."""

    path: str
    shard: int
    rows: int
    split: str
    n_tokens: int
    n_chars: int
    sha256: str


class KeptDocument(NamedTuple):
    """A document written to a train or val shard, for the counts and statistics after it."""

    split: str
    text: str
    n_chars: int
    n_tokens: int
    file: str


# ── statistics ───────────────────────────────────────────────────────────────────────────────


class Event(NamedTuple):
    """One counted fact about a record's fate. `kind` is read, rejected, filtered, duplicate
    or kept; `detail` the reason, the duplicate kind or the split; `n` records (read: the
    file's count)."""

    kind: str
    file: str | None
    detail: str = ""
    n: int = 1
    chars: int = 0
    tokens: int = 0


# ── Arrow schemas of the written tables (docs/output_format.md) ──────────────────────────────

DOC_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.string()),
        ("n_tokens", pa.int64()),
        ("n_chars", pa.int64()),
        ("source", pa.string()),
    ]
)
# What a web page adds to its shard row, when the run reads WARC/WET (docs/output_format.md).
WEB_FIELDS = pa.schema(
    [
        ("url", pa.string()),
        ("warc_date", pa.string()),
        ("http_status", pa.int32()),
        ("content_type", pa.string()),
        ("charset", pa.string()),
        ("lang", pa.string()),
        ("lang_score", pa.float64()),
        ("warc_truncated", pa.string()),
    ]
)
# The document schema plus where the record came from (per-file accounting, the rule for
# repeated ids) and its output shard.
SPILL_SCHEMA = pa.schema(
    [
        *DOC_SCHEMA,
        pa.field("file", pa.string()),
        pa.field("line", pa.int64()),
        pa.field("shard", pa.int32()),
    ]
)


# What a run with --perplexity-model adds, after the web columns.
PERPLEXITY_FIELD = pa.field("perplexity", pa.float64())


def doc_schema(web: bool = False, perplexity: bool = False) -> pa.Schema:
    """The train/val shard schema: the web columns follow the document's when `web`, then
    the document's n-gram perplexity when `perplexity`."""
    extra = [*(WEB_FIELDS if web else []), *([PERPLEXITY_FIELD] if perplexity else [])]
    return pa.schema([*DOC_SCHEMA, *extra]) if extra else DOC_SCHEMA


def spill_schema(web: bool = False, perplexity: bool = False) -> pa.Schema:
    """The spill file schema: the shard schema, then file, line, shard (always last)."""
    return pa.schema([*doc_schema(web, perplexity), *list(SPILL_SCHEMA)[len(DOC_SCHEMA) :]])


DUPLICATE_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("duplicate_of", pa.string()),
        ("kind", pa.string()),
        ("similarity", pa.float64()),
    ]
)
REJECTED_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("line", pa.int64()),
        ("id", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw", pa.string()),
    ]
)
REJECTED_WEB_SCHEMA = pa.schema([*REJECTED_SCHEMA, ("offset", pa.int64())])
NGRAM_SCHEMA = pa.schema(
    [("order", pa.int32()), ("ngram", pa.list_(pa.string())), ("count", pa.int64())]
)
