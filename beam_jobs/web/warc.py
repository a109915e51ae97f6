"""WARC and WET records from a byte stream: framing that survives damage, parsing by FastWARC.

FastWARC parses a record (WARC headers, HTTP status line and headers, digests) 3-4x faster
than warcio here (docs/web.md), but neither library survives damage: at the first gzip member
cut in half, a lying `Content-Length` or garbage between records, both raise and lose the
rest of the file; for a file cut inside its last record FastWARC returns a short payload
without error (warcio too, or an AttributeError, depending on where the cut falls).
So the framing is done here, and each framed record is handed to `WarcRecord.from_bytes`:

- `.warc.gz`: one gzip member at a time (ISA-L's zlib-compatible inflate, 1.9x faster than
  zlib here; bounded output). A member that fails to
  decompress (bad data, bad CRC) is a `gzip_corrupt` span up to the next gzip magic; a member
  that the file ends inside is `gzip_truncated`; bytes between members that are not gzip are
  `not_gzip`.
- inside a member, or in a plain `.warc`: header up to CRLFCRLF, `Content-Length` bytes, then
  CRLFCRLF. When that CRLFCRLF is not there, the length lied (or the record was cut): the
  span up to the next `CRLFCRLF WARC/` is one `content_length_mismatch` (or `record_truncated`
  at the end of the file). Where a `WARC-Block-Digest` is present it is checked, which also
  catches a lie that happens to land on a CRLFCRLF.
- a record over `max_record_bytes` (decompressed) is skipped over in bounded memory and
  reported as `record_too_large`.

Every span of the file is accounted for: a `Frame` is either a record's bytes or an error
with its file offset, length and reason.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

from fastwarc.warc import WarcRecord
from isal import isal_zlib

CHUNK = 1 << 20
# Compressed input goes to zlib in pieces this small: a typical member is 3-20 KB, and the
# bytes after a member's end come back as a copy (`unused_data`).
INFLATE_PIECE = 64 << 10
MAX_HEADER_BYTES = 64 << 10
MAX_RECORD_BYTES = 32 << 20
GZIP_MAGIC = b"\x1f\x8b\x08"
_RECORD_START = b"\nWARC/"
_BOUNDARY = b"\r\n\r\nWARC/"
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)[ \t]*\r\n", re.I)
_KINDS = (
    "warcinfo",
    "response",
    "resource",
    "request",
    "metadata",
    "revisit",
    "conversion",
    "continuation",
)
_DIGESTS = ("sha1:", "sha256:", "md5:")  # what FastWARC can verify


@dataclass
class Frame:
    """A span of the file: one record's bytes (`data`, gzip-compressed when `gz`), or an error."""

    offset: int
    length: int
    data: bytes | None = None
    gz: bool = False
    error: str | None = None
    detail: str = ""
    plain: bytes | None = None  # a gzip member inflated, while the framing still holds it


@dataclass
class Record:
    """A parsed record; `error` set (with `detail`) when it is a dead letter."""

    offset: int
    length: int
    kind: str
    record_id: str | None = None
    uri: str | None = None
    date: str | None = None
    http_status: int | None = None
    content_type: str | None = None  # the MIME type of the payload, lower case, no parameters
    http_charset: str | None = None
    payload: bytes = b""
    truncated: str | None = None  # WARC-Truncated: the capture was cut (length, time, ...)
    error: str | None = None
    detail: str = ""


class _Stream:
    """A file read forward in chunks; a window of the bytes not consumed yet."""

    def __init__(self, raw, chunk: int = CHUNK):
        self.raw, self.chunk = raw, chunk
        self.buf, self.start, self.offset, self.eof = bytearray(), 0, 0, False

    def available(self) -> int:
        return len(self.buf) - self.start

    def fill(self, n: int) -> bool:
        """At least `n` bytes available, unless the file ends first."""
        while self.available() < n and not self.eof:
            data = self.raw.read(max(self.chunk, n - self.available()))
            if not data:
                self.eof = True
                break
            if self.start:
                del self.buf[: self.start]
                self.start = 0
            self.buf += data
        return self.available() >= n

    def peek(self, begin: int, end: int) -> bytes:
        return bytes(self.buf[self.start + begin : self.start + end])

    def find(self, pattern: bytes, begin: int = 0, limit: int | None = None) -> int:
        """Position of `pattern` at or after `begin`, reading on as needed; -1 if it is not
        in the first `limit` bytes or before the end of the file."""
        searched = begin
        while True:
            have = self.available()
            end = have if limit is None else min(have, limit)
            hit = self.buf.find(pattern, self.start + searched, self.start + end)
            if hit >= 0:
                return hit - self.start
            if limit is not None and have >= limit:
                return -1
            searched = max(begin, end - len(pattern) + 1)
            self.fill(have + self.chunk)
            if self.available() == have:
                return -1

    def take(self, n: int) -> bytes:
        data = self.peek(0, n)
        self.skip(n)
        return data

    def skip(self, n: int) -> int:
        """Consume `n` bytes (fewer at the end of the file) without keeping them."""
        done = 0
        while done < n and self.fill(1):
            step = min(n - done, self.available())
            self.start += step
            done += step
        self.offset += done
        return done

    def skip_until(self, pattern: bytes) -> int:
        """Consume up to the next `pattern` (or the end of the file) in bounded memory."""
        done = 0
        while True:
            hit = self.buf.find(pattern, self.start, len(self.buf))
            if hit >= 0:
                return done + self.skip(hit - self.start)
            keep = len(pattern) - 1
            done += self.skip(max(0, self.available() - keep))
            if not self.fill(self.available() + self.chunk):
                return done + self.skip(self.available())


def plain_frames(
    stream: _Stream, max_record_bytes: int = MAX_RECORD_BYTES, whole: bool = False
) -> Iterator[Frame]:
    """Uncompressed WARC records (see the module doc for the damage rules). `whole`: the
    stream is a complete gzip member, so a record running past its end lied about its length
    rather than being cut."""
    while stream.fill(1):
        offset = stream.offset
        if not (stream.fill(5) and stream.peek(0, 5) == b"WARC/"):
            stream.skip(1)
            skipped = 1 + stream.skip_until(_RECORD_START)
            if stream.available():
                skipped += stream.skip(1)  # the line break before WARC/
            yield Frame(offset, skipped, error="not_a_warc_record")
            continue
        head = stream.find(b"\r\n\r\n", 0, MAX_HEADER_BYTES)
        if head < 0 and stream.available() < MAX_HEADER_BYTES:  # the file ends in the header
            yield Frame(offset, stream.skip(stream.available()), error="record_truncated")
            continue
        if head < 0:
            length = stream.skip(1) + stream.skip_until(_RECORD_START)
            yield Frame(
                offset,
                length + stream.skip(1 if stream.available() else 0),
                error="header_too_long",
            )
            continue
        match = _CONTENT_LENGTH.search(stream.peek(0, head + 2))
        if match is None:
            yield _resync(stream, offset, head, "no_content_length", "")
            continue
        size = int(match.group(1))
        total = head + 4 + size + 4
        if size > max_record_bytes:
            yield _too_large(stream, offset, head, total, size)
            continue
        if stream.fill(total) and stream.peek(total - 4, total) == b"\r\n\r\n":
            yield Frame(offset, total, stream.take(total))
            continue
        detail = f"Content-Length {size}, {stream.available() - head - 4} bytes follow"
        yield _resync(stream, offset, head, "content_length_mismatch", detail, whole)


def _resync(
    stream: _Stream, offset: int, head: int, reason: str, detail: str, whole: bool = False
) -> Frame:
    """The bytes from `offset` to the next record boundary are one error."""
    hit = stream.find(_BOUNDARY, head)
    if hit < 0:
        if reason == "content_length_mismatch" and not whole:
            reason = "record_truncated"
        return Frame(offset, stream.skip(stream.available()), error=reason, detail=detail)
    return Frame(offset, stream.skip(hit + 4), error=reason, detail=detail)


def _too_large(stream: _Stream, offset: int, head: int, total: int, size: int) -> Frame:
    skipped = stream.skip(total - 4)
    if skipped < total - 4:
        return Frame(offset, skipped, error="record_truncated", detail=f"Content-Length {size}")
    if not (stream.fill(4) and stream.peek(0, 4) == b"\r\n\r\n"):
        return Frame(
            offset, skipped, error="content_length_mismatch", detail=f"Content-Length {size}"
        )
    return Frame(offset, skipped + stream.skip(4), error="record_too_large", detail=f"{size} bytes")


def gzip_frames(stream: _Stream, max_record_bytes: int = MAX_RECORD_BYTES) -> Iterator[Frame]:
    """One frame per gzip member: its compressed bytes, or an error span."""
    while stream.fill(1):
        offset = stream.offset
        if not (stream.fill(3) and stream.peek(0, 3) == GZIP_MAGIC):
            stream.skip(1)
            yield Frame(offset, 1 + stream.skip_until(GZIP_MAGIC), error="not_gzip")
            continue
        decomp, pos, size, pieces = isal_zlib.decompressobj(31), 0, 0, []
        try:
            while not decomp.eof:
                if not stream.fill(pos + 1):
                    raise EOFError
                chunk = stream.peek(pos, pos + INFLATE_PIECE)
                for piece in _inflate(decomp, chunk):
                    size += len(piece)
                    if pieces is not None:
                        pieces.append(piece)
                        if size > max_record_bytes:
                            pieces = None
                pos += len(chunk) - len(decomp.unused_data)
                if pieces is None:  # too large: drop what was read, so memory stays bounded
                    stream.skip(pos)
                    pos = 0
        except isal_zlib.error as exc:
            stream.skip(1)
            length = stream.offset - offset + stream.skip_until(GZIP_MAGIC)
            yield Frame(offset, length, error="gzip_corrupt", detail=str(exc))
            continue
        except EOFError:
            length = stream.offset - offset + stream.skip(stream.available())
            yield Frame(offset, length, error="gzip_truncated", detail=f"{size} bytes inflated")
            continue
        if pieces is None:
            yield Frame(
                offset,
                stream.offset - offset + stream.skip(pos),
                error="record_too_large",
                detail=f"{size} bytes inflated",
            )
            continue
        yield Frame(offset, pos, stream.take(pos), gz=True, plain=b"".join(pieces))


def _inflate(decomp, chunk: bytes) -> Iterator[bytes]:
    """`chunk` inflated in pieces of at most CHUNK bytes (a small member may inflate 1000x)."""
    data = chunk
    while True:
        piece = decomp.decompress(data, CHUNK)
        yield piece
        data = decomp.unconsumed_tail
        # A full piece with no input left may still have output pending inside zlib.
        if decomp.eof or (not data and len(piece) < CHUNK):
            return


def frames(raw, max_record_bytes: int = MAX_RECORD_BYTES) -> Iterator[Frame]:
    """The frames of a WARC/WET file object or bytes, gzip-compressed or not (by its magic)."""
    stream = _Stream(io.BytesIO(raw) if isinstance(raw, (bytes, bytearray)) else raw)
    gz = stream.fill(3) and stream.peek(0, 3) == GZIP_MAGIC
    yield from (gzip_frames if gz else plain_frames)(stream, max_record_bytes)


def member_records(frame: Frame, max_record_bytes: int = MAX_RECORD_BYTES) -> list[Frame]:
    """The record frames inside one frame: itself for a plain record, the records of the
    member for a gzip frame (usually one; offsets are the member's)."""
    if frame.error or not frame.gz:
        return [frame]
    plain = frame.plain if frame.plain is not None else isal_zlib.decompress(frame.data, 31)
    inner = list(plain_frames(_Stream(io.BytesIO(plain)), max_record_bytes, whole=True))
    for sub in inner:
        sub.offset, sub.length = frame.offset, frame.length
    return inner


def parse_record(
    frame: Frame, max_payload_bytes: int = MAX_RECORD_BYTES, verify_digests: bool = True
) -> Record:
    """A plain record frame → `Record` (FastWARC does the parsing)."""
    if frame.error:
        return Record(frame.offset, frame.length, "unknown", error=frame.error, detail=frame.detail)
    out = Record(frame.offset, frame.length, "unknown")
    try:
        rec = WarcRecord.from_bytes(frame.data)
    except OSError as exc:
        out.error, out.detail = "unparsable_record", str(exc)
        return out
    headers = rec.headers
    kind = str(rec.record_type).rsplit(".", 1)[-1]
    out.kind = kind if kind in _KINDS else "unknown"
    out.record_id, out.uri = rec.record_id or None, headers.get("WARC-Target-URI")
    out.date, out.truncated = headers.get("WARC-Date"), headers.get("WARC-Truncated")
    digest = headers.get("WARC-Block-Digest", "")
    if (
        verify_digests
        and digest.lower().startswith(_DIGESTS)
        and not rec.verify_block_digest(consume=False)
    ):
        out.error, out.detail = "block_digest_mismatch", digest
        return out
    if out.kind in ("response", "revisit") and rec.is_http:
        try:
            rec.parse_http(auto_decode="all")
        except (OSError, ValueError) as exc:
            out.error, out.detail = "http_unparsable", str(exc)
            return out
        out.http_status = rec.http_headers.status_code
        mime = rec.http_content_type or ""
        out.content_type, out.http_charset = mime.lower() or None, rec.http_charset or None
    elif out.kind in ("conversion", "resource"):
        mime = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        out.content_type = mime or None
    try:
        payload = rec.reader.read(max_payload_bytes + 1)
    except OSError as exc:  # a broken chunked or gzip transfer encoding
        out.error, out.detail = "payload_unreadable", str(exc)
        return out
    if len(payload) > max_payload_bytes:
        out.error, out.detail = "record_too_large", f"payload over {max_payload_bytes} bytes"
        return out
    out.payload = payload
    return out


def iter_records(
    raw, max_record_bytes: int = MAX_RECORD_BYTES, verify_digests: bool = True
) -> Iterator[Record]:
    """Every record of a WARC/WET file object or bytes, dead letters included, in order."""
    for frame in frames(raw, max_record_bytes):
        for sub in member_records(frame, max_record_bytes):
            yield parse_record(sub, max_record_bytes, verify_digests)
