"""Reading: text, JSON Lines and Parquet files (gzip or not) into records with stable ids.

Each file is read by one DoFn call, line by line, so ids can be `RELPATH:LINE` without
help from the runner, and cut into blocks of whole lines that the workers parse. A record
that cannot be decoded or parsed goes to the `rejected` output with its location and reason;
a file that breaks midway (truncated gzip) keeps the records read before the break and adds
one rejected record for the rest.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import posixpath
import re

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from beam_jobs.io import shuffle_bytes
from beam_jobs.runtime.progress import report_progress

REJECTED = "rejected"
FILES = "files"
FILTERED, SKIPPED = "filtered", "skipped"  # WARC records that are not documents
WARC_FORMATS = ("warc", "wet")
_GLOB_CHARS = re.compile(r"[*?\[]")


def glob_base(pattern: str) -> str:
    """The directory part of a pattern before its first glob character, with a trailing '/'."""
    match = _GLOB_CHARS.search(pattern)
    head = pattern[: match.start()] if match else pattern
    return head.rsplit("/", 1)[0] + "/" if "/" in head else ""


def common_base(patterns: list[str]) -> str:
    bases = [glob_base(p) for p in patterns]
    base = bases[0]
    for other in bases[1:]:
        while not other.startswith(base):
            base = base[:-1].rsplit("/", 1)[0] + "/" if base.count("/") > 1 else ""
    return base


def detect_format(path: str, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    name = path.lower()
    for suffix in (".gz", ".gzip", ".bz2", ".zst", ".deflate"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".warc", ".wet")):
        return "wet" if name.endswith(".wet") else "warc"
    return "text"


def rejected_row(file, line, reason, detail, raw=b"", doc_id=None) -> dict:
    if isinstance(raw, bytes):
        raw = raw[:800].decode("utf-8", errors="replace")
    return {"file": file, "line": line, "id": doc_id, "reason": reason,
            "detail": str(detail)[:500], "raw": raw[:200]}


def open_lines(readable: fileio.ReadableFile):
    """A binary stream to iterate line by line. Beam's own decompressing reader has no line
    iterator, so gzip goes through the standard library (C-speed readline)."""
    path = readable.metadata.path
    compression = CompressionTypes.detect_compression_type(path)
    if compression == CompressionTypes.GZIP:
        raw = readable.open(compression_type=CompressionTypes.UNCOMPRESSED)
        # GzipFile buffers only a few KB, so a truncated file loses little before the break.
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if compression == CompressionTypes.UNCOMPRESSED:
        return readable.open(compression_type=CompressionTypes.UNCOMPRESSED)
    handle = readable.open()
    return _LineIterator(handle)


class _LineIterator:
    def __init__(self, handle):
        self.handle = handle

    def __iter__(self):
        return iter(self.handle.readline, b"")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()


# A block: (relative path, format, first line or row, payload). For text formats the payload
# is the raw bytes of consecutive whole lines, packed by `shuffle_bytes` (blocks are
# shuffled); for Parquet it is (path, row group index).
BLOCK_BYTES = 4 << 20


class SplitFile(beam.DoFn):
    """A matched file → blocks of about `block_bytes` (whole lines or Parquet row groups),
    and one {path, records, digest} per file on the `files` output.

    The file is read once, start to end (a gzip stream cannot be split), but not parsed here:
    blocks are cheap to shuffle (one bytes object each), so the parsing and everything after
    it spreads over the workers whatever the file sizes. A file that breaks midway keeps the
    lines read before the break and adds one `unreadable_file` record for the rest."""

    def __init__(self, base: str, fmt: str, block_bytes: int = BLOCK_BYTES,
                 max_record_bytes: int = 16 << 20):
        self.base, self.fmt, self.block_bytes = base, fmt, block_bytes
        self.max_record_bytes = max_record_bytes

    def setup(self):
        self.bytes_read = beam.metrics.Metrics.counter("read", "bytes")
        self.files = beam.metrics.Metrics.counter("read", "files")
        self.blocks = beam.metrics.Metrics.counter("read", "blocks")

    def process(self, readable: fileio.ReadableFile):
        path = readable.metadata.path
        rel = path[len(self.base):] if path.startswith(self.base) else posixpath.basename(path)
        fmt = detect_format(path, self.fmt)
        digest, count = hashlib.sha256(), [0]
        try:
            if fmt == "parquet":
                blocks = self._parquet_blocks(path, rel, digest, count)
            elif fmt in WARC_FORMATS:
                from beam_jobs.io.warc import split_warc  # (it imports this module)

                blocks = split_warc(readable, rel, self.block_bytes, self.max_record_bytes,
                                    digest, count)
            else:
                blocks = self._line_blocks(readable, rel, fmt, digest, count)
            for block in blocks:
                if not isinstance(block, beam.pvalue.TaggedOutput):  # WARC dead letters
                    self.blocks.inc()
                yield block
        except Exception as exc:  # a file that breaks midway: keep what was read
            count[0] += 1
            beam.metrics.Metrics.counter("read", "broken_files").inc()
            yield beam.pvalue.TaggedOutput(REJECTED, rejected_row(
                rel, count[0], "unreadable_file", f"{type(exc).__name__}: {exc}"))
        self.files.inc()
        yield beam.pvalue.TaggedOutput(FILES, {"path": rel, "records": count[0],
                                               "digest": digest.hexdigest()})

    def _line_blocks(self, readable, rel, fmt, digest, count):
        lines, size, first = [], 0, 1
        try:
            with open_lines(readable) as handle:
                for raw in handle:
                    digest.update(raw)
                    lines.append(raw)
                    size += len(raw)
                    count[0] += 1
                    if size >= self.block_bytes:
                        yield self._text_block(rel, fmt, first, lines, size)
                        lines, size, first = [], 0, count[0] + 1
        finally:  # also when the file breaks: the lines before the break are kept
            if lines:
                yield self._text_block(rel, fmt, first, lines, size)

    def _text_block(self, rel, fmt, first, lines, size):
        self.bytes_read.inc(size)
        report_progress(len(lines), size)
        # Lines keep their b"\n", so the block splits back on it exactly.
        return rel, fmt, first, shuffle_bytes.pack(b"".join(lines))

    def _parquet_blocks(self, path, rel, digest, count):
        import pyarrow.parquet as pq

        with FileSystems.open(path, compression_type=CompressionTypes.AUTO) as handle:
            data = handle.read()
        digest.update(data)
        self.bytes_read.inc(len(data))
        meta = pq.ParquetFile(io.BytesIO(data)).metadata
        for group in range(meta.num_row_groups):
            yield rel, "parquet", count[0], (path, group)
            count[0] += meta.row_group(group).num_rows
        report_progress(count[0], len(data))


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
    """A block → document records {id, raw_text, source, file, line}; records that cannot be
    decoded or parsed go to the `rejected` output with their location and reason."""

    def __init__(self, text_field: str, id_field: str, source_field: str,
                 max_record_bytes: int, decode_errors: str = "strict", web=None):
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
            rows = ((first + i, self._parse_line(raw, fmt))
                    for i, raw in enumerate(block_lines(payload)))
        for line, record in rows:
            self.records.inc()
            record.update(file=rel, line=line)
            if record.get("reason"):
                yield beam.pvalue.TaggedOutput(REJECTED, record)
                continue
            if not record.get("id"):
                record["id"] = f"{rel}:{line}"
            if not record.get("source"):
                record["source"] = rel
            yield record

    def _warc_outputs(self, block):
        if self.warc is None:
            from beam_jobs.io.warc import WarcParser
            from beam_jobs.web.page import WebConfig

            self.warc = WarcParser(self.web or WebConfig(max_record_bytes=self.max_record_bytes))
        for out in self.warc.parse(block):
            self.records.inc()
            yield out

    def _parse_line(self, raw: bytes, fmt: str) -> dict:
        raw = raw.removesuffix(b"\r")
        if len(raw) > self.max_record_bytes:
            return rejected_row(None, None, "too_large", f"{len(raw)} bytes", raw)
        if b"\x00" in raw:
            return rejected_row(None, None, "nul_byte", "record contains NUL bytes", raw)
        try:
            text = raw.decode("utf-8", errors=self.decode_errors)
        except UnicodeDecodeError as exc:
            return rejected_row(None, None, "bad_utf8", exc, raw)
        text = text.removeprefix("\ufeff")  # a byte-order mark opens many files
        if fmt == "text":
            return {"raw_text": text}
        try:
            obj = json.loads(text)
        except ValueError as exc:
            return rejected_row(None, None, "bad_json", exc, raw)
        return self._from_mapping(obj, raw)

    def _from_mapping(self, obj, raw) -> dict:
        if not isinstance(obj, dict):
            return rejected_row(None, None, "bad_json", "record is not an object", raw)
        doc_id = obj.get(self.id_field)
        doc_id = None if doc_id is None else str(doc_id)
        text = obj.get(self.text_field)
        if text is None:
            return rejected_row(None, None, "missing_text", f"no {self.text_field!r} field",
                                raw, doc_id)
        if not isinstance(text, str):
            return rejected_row(None, None, "non_string_text",
                                f"{self.text_field!r} is {type(text).__name__}", raw, doc_id)
        if "\x00" in text:
            return rejected_row(None, None, "nul_byte", "text contains NUL", raw, doc_id)
        source = obj.get(self.source_field)
        source = source if isinstance(source, str) else None
        for value in (text, doc_id, source):
            if value is not None and not _encodable(value):  # a JSON escape like "\ud800"
                return rejected_row(None, None, "bad_utf8", "lone surrogate (not UTF-8)", raw,
                                    doc_id and doc_id.encode("utf-8", "backslashreplace")
                                    .decode("utf-8"))
        return {"id": doc_id, "raw_text": text, "source": source}

    def _parquet_rows(self, rel, first, path, group):
        import pyarrow.parquet as pq

        with FileSystems.open(path, compression_type=CompressionTypes.AUTO) as handle:
            # An uncompressed file is seekable: Parquet reads only this row group's chunks,
            # not the whole file once per row group. A compressed one is read whole.
            plain = CompressionTypes.detect_compression_type(path) == CompressionTypes.UNCOMPRESSED
            parquet = pq.ParquetFile(handle if plain else io.BytesIO(handle.read()))
            n = parquet.metadata.row_group(group).num_rows
            try:
                columns = [c for c in (self.text_field, self.id_field, self.source_field)
                           if c in parquet.schema_arrow.names]
                objs, error = parquet.read_row_group(group, columns=columns).to_pylist(), None
            except Exception as exc:  # a damaged row group: account for every row it held
                objs, error = [], exc
        for row, obj in enumerate(objs, first):
            yield row, self._from_mapping(obj, json.dumps(obj, default=str)[:800])
        if error is not None:
            for lost in range(first, first + n):
                yield lost, rejected_row(None, None, "unreadable_file",
                                        f"{type(error).__name__}: {error}")


class ReadDocuments(beam.PTransform):
    """Paths or globs → {'docs', 'rejected', 'files'} PCollections."""

    def __init__(self, patterns: list[str], fmt: str = "auto", text_field: str = "text",
                 id_field: str = "id", source_field: str = "source",
                 max_record_bytes: int = 16 << 20, decode_errors: str = "strict",
                 block_bytes: int = BLOCK_BYTES, web=None):
        super().__init__()
        self.patterns = list(patterns)
        self.fmt, self.block_bytes, self.max_record_bytes = fmt, block_bytes, max_record_bytes
        self.parse = ParseBlock(text_field, id_field, source_field, max_record_bytes,
                                decode_errors, web)

    def expand(self, pbegin):
        split = (
            pbegin
            | "Patterns" >> beam.Create(self.patterns)
            | "Match" >> fileio.MatchAll()
            # Grouping by path drops files matched by two patterns and lets the runner hand
            # different files to different workers (a fusion break after the single Create).
            | "KeyByPath" >> beam.Map(lambda m: (m.path, m))
            | "DistinctFiles" >> beam.GroupByKey()
            | "OnePerPath" >> beam.MapTuple(lambda path, ms: next(iter(ms)))
            | "ReadMatches" >> fileio.ReadMatches()
            | "SplitFiles" >> beam.ParDo(SplitFile(common_base(self.patterns), self.fmt,
                                                   self.block_bytes, self.max_record_bytes))
            .with_outputs(REJECTED, FILES, main="blocks"))
        parsed = (split.blocks
                  # One file may be most of the input: spread its blocks over the workers.
                  | "SpreadBlocks" >> beam.Reshuffle()
                  | "Parse" >> beam.ParDo(self.parse).with_outputs(REJECTED, FILTERED, SKIPPED,
                                                                   main="docs"))
        rejected = ((split[REJECTED], parsed[REJECTED])
                    | "AllRejected" >> beam.Flatten())
        return {"docs": parsed.docs, "rejected": rejected, "files": split[FILES],
                "filtered": parsed[FILTERED], "skipped": parsed[SKIPPED]}


def check_inputs_exist(patterns: list[str]) -> None:
    """Fail before any work when a pattern matches nothing."""
    for pattern in patterns:
        if not FileSystems.match([pattern])[0].metadata_list:
            raise ValueError(f"--input {pattern!r} matches no file")
