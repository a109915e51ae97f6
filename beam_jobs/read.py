"""Reading: text, JSON Lines and Parquet files (gzip or not) into records with stable ids.

Each file is read by one DoFn call, line by line, so ids can be `RELPATH:LINE` without
help from the runner. A record that cannot be decoded or parsed goes to the `rejected`
output with its location and reason; a file that breaks midway (truncated gzip) keeps the
records read before the break and adds one rejected record for the rest.
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

from beam_jobs.progress import report_progress

REJECTED = "rejected"
FILES = "files"
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


class ParseFile(beam.DoFn):
    """A matched file → document records {id, raw_text, source, file, line}; rejected rows
    and one {path, bytes, records, digest} per file on tagged outputs."""

    def __init__(self, base: str, fmt: str, text_field: str, id_field: str,
                 source_field: str, max_record_bytes: int, decode_errors: str = "strict"):
        self.base, self.fmt = base, fmt
        self.text_field, self.id_field, self.source_field = text_field, id_field, source_field
        self.max_record_bytes, self.decode_errors = max_record_bytes, decode_errors

    def setup(self):
        self.records = beam.metrics.Metrics.counter("read", "records")
        self.bytes_read = beam.metrics.Metrics.counter("read", "bytes")
        self.files = beam.metrics.Metrics.counter("read", "files")

    def process(self, readable: fileio.ReadableFile):
        path = readable.metadata.path
        rel = path[len(self.base):] if path.startswith(self.base) else posixpath.basename(path)
        fmt = detect_format(path, self.fmt)
        digest, count = hashlib.sha256(), 0
        try:
            if fmt == "parquet":
                rows = self._parquet_rows(path, digest)
            else:
                rows = self._line_rows(readable, fmt, digest)
            for line, record in rows:
                count += 1
                if record.get("reason"):
                    record.update(file=rel, line=line)
                    yield beam.pvalue.TaggedOutput(REJECTED, record)
                else:
                    record.update(file=rel, line=line)
                    if not record.get("id"):
                        record["id"] = f"{rel}:{line}"
                    if not record.get("source"):
                        record["source"] = rel
                    yield record
        except Exception as exc:  # a file that breaks midway: keep what was read
            count += 1
            beam.metrics.Metrics.counter("read", "broken_files").inc()
            yield beam.pvalue.TaggedOutput(REJECTED, rejected_row(
                rel, count, "unreadable_file", f"{type(exc).__name__}: {exc}"))
        self.records.inc(count)
        self.files.inc()
        yield beam.pvalue.TaggedOutput(FILES, {"path": rel, "records": count,
                                               "digest": digest.hexdigest()})

    def _line_rows(self, readable, fmt, digest):
        with open_lines(readable) as handle:
            for line, raw in enumerate(handle, 1):
                digest.update(raw)
                self.bytes_read.inc(len(raw))
                report_progress(1, len(raw))
                yield line, self._parse_line(raw, fmt)

    def _parse_line(self, raw: bytes, fmt: str) -> dict:
        raw = raw.rstrip(b"\n").removesuffix(b"\r")
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
        return {"id": doc_id, "raw_text": text,
                "source": source if isinstance(source, str) else None}

    def _parquet_rows(self, path, digest):
        import pyarrow.parquet as pq

        with FileSystems.open(path, compression_type=CompressionTypes.AUTO) as handle:
            data = handle.read()
        digest.update(data)
        self.bytes_read.inc(len(data))
        table_file = pq.ParquetFile(io.BytesIO(data))
        columns = [c for c in (self.text_field, self.id_field, self.source_field)
                   if c in table_file.schema_arrow.names]
        row = 0
        for batch in table_file.iter_batches(columns=columns, batch_size=1024):
            for obj in batch.to_pylist():
                yield row, self._from_mapping(obj, json.dumps(obj, default=str)[:800])
                row += 1


class ReadDocuments(beam.PTransform):
    """Paths or globs → {'docs', 'rejected', 'files'} PCollections."""

    def __init__(self, patterns: list[str], fmt: str = "auto", text_field: str = "text",
                 id_field: str = "id", source_field: str = "source",
                 max_record_bytes: int = 16 << 20, decode_errors: str = "strict"):
        super().__init__()
        self.patterns = list(patterns)
        self.kwargs = dict(fmt=fmt, text_field=text_field, id_field=id_field,
                           source_field=source_field, max_record_bytes=max_record_bytes,
                           decode_errors=decode_errors)

    def expand(self, pbegin):
        parsed = (
            pbegin
            | "Patterns" >> beam.Create(self.patterns)
            | "Match" >> fileio.MatchAll()
            # Grouping by path drops files matched by two patterns and lets the runner hand
            # different files to different workers (a fusion break after the single Create).
            | "KeyByPath" >> beam.Map(lambda m: (m.path, m))
            | "DistinctFiles" >> beam.GroupByKey()
            | "OnePerPath" >> beam.MapTuple(lambda path, ms: next(iter(ms)))
            | "ReadMatches" >> fileio.ReadMatches()
            | "Parse" >> beam.ParDo(ParseFile(common_base(self.patterns), **self.kwargs))
            .with_outputs(REJECTED, FILES, main="docs"))
        # Files are read whole by one worker; spread their documents before the heavy stages.
        docs = parsed.docs | "Spread" >> beam.Reshuffle()
        return {"docs": docs, "rejected": parsed[REJECTED], "files": parsed[FILES]}


def check_inputs_exist(patterns: list[str]) -> None:
    """Fail before any work when a pattern matches nothing."""
    for pattern in patterns:
        if not FileSystems.match([pattern])[0].metadata_list:
            raise ValueError(f"--input {pattern!r} matches no file")
