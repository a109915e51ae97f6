"""Lines of a text or JSON Lines stream: what a record is, decided once for every reader.

A line ends at `\\n`, `\\r\\n` or a lone `\\r` (the universal-newline rule of Python's text
mode), so a file with old Mac line ends is not glued into one record, and a JSON Lines file
written with any of them reads record by record. JSON itself never contains a raw CR inside a
string, so no valid record is cut. A line longer than the record limit is never held whole:
it is skipped as it streams by and reported by its length.

`transcoding` turns a stream in another encoding (Shift_JIS, EUC-JP, UTF-16, ...) into UTF-8
as it is read; bytes that are not valid in that encoding stay invalid UTF-8, so the record that
holds them is rejected as `bad_utf8` like any other (or decoded with U+FFFD under
`--decode-errors replace`).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator

CHUNK_BYTES = 1 << 20
_BREAK = re.compile(rb"\r\n?|\n")
# Byte-order marks that say a file is not UTF-8, longest first (UTF-32 LE starts like UTF-16).
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def bom_encoding(head: bytes) -> str | None:
    """'utf-16' or 'utf-32' when `head` opens with that byte-order mark, else None."""
    for bom, name in BOMS:
        if head.startswith(bom):
            return name
    return None


def iter_lines(
    read: Callable[[int], bytes], max_bytes: int, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[bytes | int]:
    """Each line's bytes without its line break, in order; for a line longer than
    `max_bytes`, its length (an int) instead. A last line without a line break counts; an
    empty one after the last break does not."""
    parts: list[bytes] = []  # the current line so far
    size = 0
    skipping = False  # the current line is over the limit: count it, don't keep it
    cr_pending = False  # the last chunk ended with \r: a \n opening the next one is its pair
    while True:
        data = read(chunk_bytes)
        if not data:
            break
        if cr_pending and data.startswith(b"\n"):
            data = data[1:]
        cr_pending = data.endswith(b"\r")
        pieces = _BREAK.split(data) if b"\r" in data else data.split(b"\n")
        for i, piece in enumerate(pieces):
            size += len(piece)
            if size > max_bytes:
                skipping, parts = True, []
            elif not skipping:
                parts.append(piece)
            if i < len(pieces) - 1:  # the line ends here
                yield size if skipping else b"".join(parts)
                parts, size, skipping = [], 0, False
    if size or skipping:
        yield size if skipping else b"".join(parts)


def transcoding(read: Callable[[int], bytes], encoding: str) -> Callable[[int], bytes]:
    """A `read` that returns the stream's text as UTF-8; invalid input bytes stay as they are
    (invalid UTF-8), so the records holding them are rejected, not silently altered. A
    byte-order mark of the encoding is dropped."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="surrogateescape")
    done = False

    def read_utf8(n: int) -> bytes:
        nonlocal done
        out = b""
        while not out and not done:  # a decoder may hold back a partial character
            data = read(n)
            done = not data
            out = decoder.decode(data, final=done).encode("utf-8", "surrogateescape")
        return out

    return read_utf8
