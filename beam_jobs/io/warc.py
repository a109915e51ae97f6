"""Reading WARC and WET files (`.warc`, `.warc.gz`, `.wet`, `.wet.gz`): the web twin of the
line reader in `read.py`, which dispatches here by format, with the same shape. A file is cut
into blocks of whole records (whole gzip members for `.gz`) of about the block size; blocks
are reshuffled; parsing a block gives documents, skipped and filtered records (with reasons)
and dead letters (with file, offset and reason). Every record of a file is counted once, so per file

    records read = documents + skipped + filtered + rejected (read time) + later stages.

A record's location is its file, its ordinal in the file (`line`, 1-based, like a line
number) and its byte `offset` (of the gzip member in a `.gz`).
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes

from beam_jobs.io.read import FILTERED, REJECTED, SKIPPED, rejected
from beam_jobs.records import WEB_FIELDS, Event, Filtered, RawRecord, Rejected
from beam_jobs.runtime.progress import report_progress
from beam_jobs.web import page, warc

NAMESPACE = "web"


class _Hashing:
    """A file object that hashes what is read through it (the per-file digest)."""

    def __init__(self, raw, digest):
        self.raw, self.digest = raw, digest

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.digest.update(data)
        return data


def warc_row(
    rel: str,
    line: int,
    offset: int,
    reason: str,
    detail: str = "",
    raw: bytes = b"",
    doc_id: str | None = None,
) -> Rejected:
    """A dead letter with the byte offset of its record."""
    return rejected(reason, detail, raw, doc_id, file=rel, line=line)._replace(offset=offset)


def split_warc(
    readable: fileio.ReadableFile,
    rel: str,
    block_bytes: int,
    max_record_bytes: int,
    digest,
    count: list[int],
    blocks=None,
):
    """Blocks (rel, fmt, first record ordinal, [(offset, length, records, data, gz), ...])
    and, tagged REJECTED, the damaged spans of the file. `count[0]` ends as the number of
    records (damaged spans included) in the file; `blocks` counts the blocks."""
    fmt = "wet" if ".wet" in rel.lower() else "warc"
    raw = _Hashing(readable.open(compression_type=CompressionTypes.UNCOMPRESSED), digest)
    frames, size, first = [], 0, count[0] + 1
    for frame in warc.frames(raw, max_record_bytes):
        if frame.error:
            count[0] += 1
            beam.metrics.Metrics.counter(NAMESPACE, f"rejected.{frame.error}").inc()
            yield beam.pvalue.TaggedOutput(
                REJECTED, warc_row(rel, count[0], frame.offset, frame.error, frame.detail)
            )
            continue
        records = len(warc.member_records(frame, max_record_bytes))
        frames.append((frame.offset, frame.length, records, frame.data, frame.gz))
        count[0] += records
        size += frame.length
        if size >= block_bytes:
            report_progress(len(frames), size)
            if blocks is not None:
                blocks.inc()
            yield rel, fmt, first, frames
            frames, size, first = [], 0, count[0] + 1
    if frames:
        report_progress(len(frames), size)
        if blocks is not None:
            blocks.inc()
        yield rel, fmt, first, frames


class WarcParser:
    """Parses WARC blocks for `read.ParseBlock` (which owns the DoFn life cycle): documents,
    and rows tagged `skipped`, `filtered` or `rejected`. `setup()` starts the extractor's
    child process and the language model; `teardown()` stops them."""

    def __init__(self, config: page.WebConfig = page.WebConfig()):
        self.config = config
        self.pages = None
        self._counters = {}

    def setup(self) -> None:
        if self.pages is None:
            self.pages = page.PageProcessor(self.config)

    def teardown(self) -> None:
        if self.pages is not None:
            self.pages.close()
            self.pages = None

    def count(self, name: str) -> None:
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = beam.metrics.Metrics.counter(NAMESPACE, name)
        counter.inc()

    def parse(self, block):
        self.setup()
        rel, fmt, first, frames = block
        line = first - 1
        for offset, length, _, data, gz in frames:
            frame = warc.Frame(offset, length, data, gz)
            for sub in warc.member_records(frame, self.config.max_record_bytes):
                line += 1
                record = warc.parse_record(
                    sub, self.config.max_record_bytes, self.config.verify_digests
                )
                yield from self._outcome(rel, line, record)

    def _outcome(self, rel: str, line: int, record: warc.Record):
        out = self.pages.process(record)
        self.count(f"record.{record.kind}")
        if out.charset_reason:
            self.count(f"charset.{out.charset_reason}")
        if out.lang:
            self.count(f"lang.{out.lang}")
        self.count(f"{out.kind}.{out.reason}")
        if out.kind == page.DOCUMENT:
            doc = out.doc
            yield RawRecord(
                doc["id"] or f"{rel}@{record.offset}",
                doc["raw_text"],
                rel,
                rel,
                line,
                tuple(doc[name] for name in WEB_FIELDS.names),
            )
            return
        if out.kind == page.SKIPPED:
            yield beam.pvalue.TaggedOutput(SKIPPED, Event("skipped", rel, out.reason))
            return
        if out.kind == page.FILTERED:
            doc_id = record.record_id or f"{rel}@{record.offset}"
            yield beam.pvalue.TaggedOutput(FILTERED, Filtered(doc_id, rel, out.reason))
            return
        yield beam.pvalue.TaggedOutput(
            REJECTED,
            warc_row(
                rel,
                line,
                record.offset,
                out.reason,
                out.detail,
                record.payload[:200],
                record.record_id,
            ),
        )
