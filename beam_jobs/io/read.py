"""Reading: text, JSON Lines and Parquet files (gzip or not) into records with stable ids.

Each file is read by one DoFn call, line by line, so ids can be `RELPATH:LINE` without
help from the runner, and cut into blocks of whole lines that the workers parse. A record
that cannot be decoded or parsed goes to the `rejected` output with its location and reason;
a file that breaks midway (truncated gzip) keeps the records read before the break and adds
one rejected record for the rest.
"""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import io
import json
import posixpath

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from beam_jobs.io import shuffle_bytes
from beam_jobs.io.files import (
    WARC_FORMATS,
    common_base,
    detect_format,
    open_stream,
    unreadable_matches,
)
from beam_jobs.io.fingerprint import hashing_reader
from beam_jobs.io.lines import bom_encoding, iter_lines, transcoding
from beam_jobs.records import InputFile, RawRecord, Rejected
from beam_jobs.runtime.progress import report_progress

REJECTED = "rejected"
FILES = "files"
FILTERED, SKIPPED = "filtered", "skipped"  # WARC records that are not documents


def rejected(
    reason: str,
    detail,
    raw: bytes | str = b"",
    doc_id: str | None = None,
    file: str | None = None,
    line: int | None = None,
) -> Rejected:
    """A dead letter; its location is filled in by the step that knows it."""
    if isinstance(raw, bytes):
        raw = raw[:800].decode("utf-8", errors="replace")
    return Rejected(file, line, doc_id, reason, str(detail)[:500], raw[:200])


# A block: (relative path, format, first line or row, payload). For text formats the payload
# is the raw bytes of consecutive whole lines, packed by `shuffle_bytes` (blocks are
# shuffled); for Parquet it is (path, row group index).
BLOCK_BYTES = 4 << 20


@dataclasses.dataclass(frozen=True)
class ReadConfig:
    """What to read and how (the `input and output` flags)."""

    patterns: tuple[str, ...]
    fmt: str = "auto"
    text_field: str = "text"
    id_field: str = "id"
    source_field: str = "source"
    max_record_bytes: int = 16 << 20
    decode_errors: str = "strict"
    block_bytes: int = BLOCK_BYTES
    encoding: str = "utf-8"


class SplitFile(beam.DoFn):
    """A matched file → blocks of about `block_bytes` (whole lines, see `beam_jobs.io.lines`,
    or Parquet row groups), and one `InputFile` per file on the `files` output.

    The file is read once, start to end (a gzip stream cannot be split), but not parsed here:
    blocks are cheap to shuffle (one bytes object each), so the parsing and everything after
    it spreads over the workers whatever the file sizes. A line over `max_record_bytes` is
    rejected (`too_large`) as it streams by, never held. A file that breaks midway keeps the
    lines read before the break and adds one `unreadable_file` record for the rest."""

    def __init__(
        self,
        base: str,
        fmt: str,
        block_bytes: int = BLOCK_BYTES,
        max_record_bytes: int = 16 << 20,
        encoding: str = "utf-8",
    ):
        self.base, self.fmt, self.block_bytes = base, fmt, block_bytes
        self.max_record_bytes, self.encoding = max_record_bytes, encoding

    def setup(self):
        self.bytes_read = beam.metrics.Metrics.counter("read", "bytes")
        self.files = beam.metrics.Metrics.counter("read", "files")
        self.blocks = beam.metrics.Metrics.counter("read", "blocks")

    def process(self, readable: fileio.ReadableFile):
        path = readable.metadata.path
        rel = path[len(self.base) :] if path.startswith(self.base) else posixpath.basename(path)
        fmt = detect_format(path, self.fmt)
        digest, count = hashlib.sha256(), [0]
        try:
            if fmt == "parquet":
                yield from self._parquet_blocks(path, rel, digest, count)
            elif fmt in WARC_FORMATS:
                from beam_jobs.io.warc import split_warc  # (it imports this module)

                yield from split_warc(
                    readable,
                    rel,
                    self.block_bytes,
                    self.max_record_bytes,
                    digest,
                    count,
                    self.blocks,
                )
            else:
                yield from self._line_blocks(readable, rel, fmt, digest, count)
        except Exception as exc:  # a file that breaks midway: keep what was read
            count[0] += 1
            beam.metrics.Metrics.counter("read", "broken_files").inc()
            yield beam.pvalue.TaggedOutput(
                REJECTED,
                rejected(
                    "unreadable_file", f"{type(exc).__name__}: {exc}", file=rel, line=count[0]
                ),
            )
        self.files.inc()
        yield beam.pvalue.TaggedOutput(FILES, InputFile(rel, count[0], digest.hexdigest()))

    def _line_blocks(self, readable, rel, fmt, digest, count):
        lines, size, first = [], 0, 1
        try:
            with open_stream(readable) as handle:
                read, bom = self._reader(handle, digest)
                if read is None:  # a UTF-16/32 file read as UTF-8: one record says why
                    count[0] += 1
                    yield beam.pvalue.TaggedOutput(
                        REJECTED,
                        rejected(
                            "wrong_encoding",
                            f"the file opens with a {bom.upper()} byte-order "
                            "mark; pass --encoding auto (or the encoding)",
                            file=rel,
                            line=1,
                        ),
                    )
                    return
                for line in iter_lines(read, self.max_record_bytes):
                    count[0] += 1
                    if isinstance(line, int):  # over the limit: never held whole
                        if lines:
                            yield self._text_block(rel, fmt, first, lines, size)
                        lines, size, first = [], 0, count[0] + 1
                        yield beam.pvalue.TaggedOutput(
                            REJECTED,
                            rejected("too_large", f"{line} bytes", file=rel, line=count[0]),
                        )
                        continue
                    lines.append(line)
                    size += len(line) + 1
                    if size >= self.block_bytes:
                        yield self._text_block(rel, fmt, first, lines, size)
                        lines, size, first = [], 0, count[0] + 1
        finally:  # also when the file breaks: the lines before the break are kept
            if lines:
                yield self._text_block(rel, fmt, first, lines, size)

    def _reader(self, handle, digest):
        """(`read(n)` of the file's text as UTF-8, hashing the decompressed bytes, None), or
        (None, its encoding) when a UTF-16/32 byte-order mark says it is not UTF-8 as
        expected."""
        read = hashing_reader(handle, digest)

        head = b""
        while len(head) < 4 and (more := read(4 - len(head))):
            head += more
        pending = [head]

        def read_from_head(n: int) -> bytes:
            return pending.pop() if pending else read(n)

        bom, encoding = bom_encoding(head), self.encoding
        if encoding == "auto":
            encoding = bom or "utf-8"
        elif bom and codecs.lookup(encoding).name == "utf-8":
            return None, bom
        if codecs.lookup(encoding).name == "utf-8":
            return read_from_head, None
        return transcoding(read_from_head, encoding), None

    def _text_block(self, rel, fmt, first, lines, size):
        self.bytes_read.inc(size)
        self.blocks.inc()
        report_progress(len(lines), size)
        # One record a line, so the block splits back on b"\n" exactly.
        return rel, fmt, first, shuffle_bytes.pack(b"\n".join(lines) + b"\n")

    def _parquet_blocks(self, path, rel, digest, count):
        import pyarrow.parquet as pq

        with FileSystems.open(path, compression_type=CompressionTypes.AUTO) as handle:
            data = handle.read()
        digest.update(data)
        self.bytes_read.inc(len(data))
        meta = pq.ParquetFile(io.BytesIO(data)).metadata
        for group in range(meta.num_row_groups):
            self.blocks.inc()
            yield rel, "parquet", count[0], (path, group)
            count[0] += meta.row_group(group).num_rows
        report_progress(count[0], len(data))


def _as_text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    return str(value)


def block_lines(payload: bytes) -> list[bytes]:
    lines = shuffle_bytes.unpack(payload).split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # the block ended with a line break
    return lines


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class ParseBlock(beam.DoFn):
    """A block → `RawRecord`s; records that cannot be decoded or parsed go to the `rejected`
    output as `Rejected` rows with their location and reason."""

    def __init__(
        self,
        text_field: str,
        id_field: str,
        source_field: str,
        max_record_bytes: int,
        decode_errors: str = "strict",
        web=None,
    ):
        self.text_field, self.id_field, self.source_field = text_field, id_field, source_field
        self.max_record_bytes, self.decode_errors = max_record_bytes, decode_errors
        self.web, self.warc = web, None  # web: a beam_jobs.web.page.WebConfig

    def setup(self):
        self.records = beam.metrics.Metrics.counter("read", "records")

    def teardown(self):
        if self.warc is not None:
            self.warc.teardown()

    def process(self, block):
        rel, fmt, first, payload = block
        if fmt in WARC_FORMATS:
            yield from self._warc_outputs(block)
            return
        if fmt == "parquet":
            rows = self._parquet_rows(rel, first, *payload)
        else:
            rows = (
                (first + i, self._parse_line(raw, fmt))
                for i, raw in enumerate(block_lines(payload))
            )
        for line, parsed in rows:
            self.records.inc()
            if isinstance(parsed, Rejected):
                yield beam.pvalue.TaggedOutput(REJECTED, parsed.at(rel, line))
                continue
            doc_id, text, source = parsed
            yield RawRecord(doc_id or f"{rel}:{line}", text, source or rel, rel, line)

    def _warc_outputs(self, block):
        if self.warc is None:
            from beam_jobs.io.warc import WarcParser
            from beam_jobs.web.page import WebConfig

            self.warc = WarcParser(self.web or WebConfig(max_record_bytes=self.max_record_bytes))
        for out in self.warc.parse(block):
            self.records.inc()
            yield out

    def _parse_line(self, raw: bytes, fmt: str) -> tuple | Rejected:
        """(id or None, text, source or None), or why the line is not a record."""
        if b"\x00" in raw:
            return rejected("nul_byte", "record contains NUL bytes", raw)
        try:
            text = raw.decode("utf-8", errors=self.decode_errors)
        except UnicodeDecodeError as exc:
            return rejected("bad_utf8", exc, raw)
        text = text.removeprefix("\ufeff")  # a byte-order mark opens many files
        if fmt == "text":
            return None, text, None
        try:
            obj = json.loads(text)
        except ValueError as exc:
            return rejected("bad_json", exc, raw)
        return self._from_mapping(obj, raw)

    def _from_mapping(self, obj, raw) -> tuple | Rejected:
        if not isinstance(obj, dict):
            return rejected("bad_json", "record is not an object", raw)
        doc_id = obj.get(self.id_field)
        if doc_id is not None and (
            isinstance(doc_id, bool) or not isinstance(doc_id, (str, int, float, bytes))
        ):
            return rejected(
                "bad_id",
                f"{self.id_field!r} is {type(doc_id).__name__}, not a string or number",
                raw,
            )
        doc_id = None if doc_id is None else _as_text(doc_id)
        text = obj.get(self.text_field)
        if text is None:
            detail = (
                f"{self.text_field!r} is null"
                if self.text_field in obj
                else f"no {self.text_field!r} field"
            )
            return rejected("missing_text", detail, raw, doc_id)
        if isinstance(text, bytes):  # a binary Parquet column: UTF-8, under the same rules
            try:
                text = text.decode("utf-8", errors=self.decode_errors)
            except UnicodeDecodeError as exc:
                return rejected("bad_utf8", exc, raw, doc_id)
        if not isinstance(text, str):
            return rejected(
                "non_string_text", f"{self.text_field!r} is {type(text).__name__}", raw, doc_id
            )
        if len(text) > self.max_record_bytes // 4 and (
            len(text.encode("utf-8", "surrogatepass")) > self.max_record_bytes
        ):
            return rejected(
                "too_large",
                f"{self.text_field!r} holds over {self.max_record_bytes} bytes",
                raw,
                doc_id,
            )  # a Parquet cell
        if "\x00" in text:
            return rejected("nul_byte", "text contains NUL", raw, doc_id)
        source = obj.get(self.source_field)
        source = source if isinstance(source, str) else None
        for value in (text, doc_id, source):
            if value is not None and not _encodable(value):  # a JSON escape like "\ud800"
                return rejected(
                    "bad_utf8",
                    "lone surrogate (not UTF-8)",
                    raw,
                    doc_id and doc_id.encode("utf-8", "backslashreplace").decode("utf-8"),
                )
        return doc_id, text, source

    def _parquet_rows(self, rel, first, path, group):
        import pyarrow.parquet as pq

        with FileSystems.open(path, compression_type=CompressionTypes.AUTO) as handle:
            # An uncompressed file is seekable: Parquet reads only this row group's chunks,
            # not the whole file once per row group. A compressed one is read whole.
            plain = CompressionTypes.detect_compression_type(path) == CompressionTypes.UNCOMPRESSED
            parquet = pq.ParquetFile(handle if plain else io.BytesIO(handle.read()))
            n = parquet.metadata.row_group(group).num_rows
            try:
                columns = [
                    c
                    for c in (self.text_field, self.id_field, self.source_field)
                    if c in parquet.schema_arrow.names
                ]
                objs, error = parquet.read_row_group(group, columns=columns).to_pylist(), None
            except Exception as exc:  # a damaged row group: account for every row it held
                objs, error = [], exc
        for row, obj in enumerate(objs, first):
            yield row, self._from_mapping(obj, json.dumps(obj, default=str)[:800])
        if error is not None:
            for lost in range(first, first + n):
                yield lost, rejected("unreadable_file", f"{type(error).__name__}: {error}")


class ReadDocuments(beam.PTransform):
    """The input files of a `ReadConfig` → {'docs': `RawRecord`s, 'rejected': `Rejected` rows,
    'files': one `InputFile` per file, 'filtered' and 'skipped': WARC records that are not
    documents (`Filtered` rows; `Event`s of kind skipped)}. `web` (a
    `beam_jobs.web.page.WebConfig`) sets how WARC/WET pages become text."""

    def __init__(self, config: ReadConfig, web=None):
        super().__init__()
        self.config, self.patterns = config, list(config.patterns)
        self.base = common_base(self.patterns)
        # Matches Beam drops without a word (local dangling symlinks, loops), found now on the
        # driver from metadata, so that each becomes a counted dead letter.
        self.unreadable = [self._relative(p) for p in unreadable_matches(self.patterns)]
        self.parse = ParseBlock(
            config.text_field,
            config.id_field,
            config.source_field,
            config.max_record_bytes,
            config.decode_errors,
            web,
        )

    def _relative(self, path: str) -> str:
        return path[len(self.base) :] if path.startswith(self.base) else posixpath.basename(path)

    def expand(self, pbegin):
        c = self.config
        split = (
            pbegin
            | "Patterns" >> beam.Create(self.patterns)
            | "Match" >> fileio.MatchAll()
            # Distinct drops files matched by two patterns and lets the runner hand different
            # files to different workers (a fusion break after the single Create).
            | "Paths" >> beam.Map(lambda m: m.path)
            | "DistinctFiles" >> beam.Distinct()
            | "ReadMatches" >> fileio.ReadMatches()
            | "SplitFiles"
            >> beam.ParDo(
                SplitFile(self.base, c.fmt, c.block_bytes, c.max_record_bytes, c.encoding)
            ).with_outputs(REJECTED, FILES, main="blocks")
        )
        parsed = (
            split.blocks
            # One file may be most of the input: spread its blocks over the workers.
            | "SpreadBlocks" >> beam.Reshuffle()
            | "Parse"
            >> beam.ParDo(self.parse).with_outputs(REJECTED, FILTERED, SKIPPED, main="docs")
        )
        unreadable = pbegin | "Unreadable" >> beam.Create(self.unreadable)
        broken = unreadable | "UnreadableRecords" >> beam.Map(
            lambda rel: rejected(
                "unreadable_file", "a dangling symlink or a symlink loop", file=rel, line=1
            )
        )
        rejected_rows = (
            split[REJECTED],
            parsed[REJECTED],
            broken,
        ) | "AllRejected" >> beam.Flatten()
        files = (
            split[FILES],
            unreadable | "UnreadableFiles" >> beam.Map(lambda rel: InputFile(rel, 1, "")),
        ) | "AllFiles" >> beam.Flatten()
        return {
            "docs": parsed.docs,
            "rejected": rejected_rows,
            "files": files,
            "filtered": parsed[FILTERED],
            "skipped": parsed[SKIPPED],
        }
