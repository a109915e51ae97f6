"""Input files: what a pattern matches, each file's format, its decompressed bytes.

Matching is metadata only (no content is read on the driver). Beam's local filesystem drops a
glob match it cannot stat (a dangling symlink, a symlink loop) without a word; `unreadable_matches`
finds those, so the read stage can account for them as rejected records.
"""

from __future__ import annotations

import glob
import gzip
import os
import re

from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

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


def open_stream(readable: fileio.ReadableFile):
    """The file's decompressed bytes as a binary stream. Gzip goes through the standard
    library, whose reader buffers only a few KB, so a truncated file loses little before the
    break; other codecs through Beam's."""
    path = readable.metadata.path
    compression = CompressionTypes.detect_compression_type(path)
    if compression == CompressionTypes.GZIP:
        raw = readable.open(compression_type=CompressionTypes.UNCOMPRESSED)
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if compression == CompressionTypes.UNCOMPRESSED:
        return readable.open(compression_type=CompressionTypes.UNCOMPRESSED)
    return readable.open()


def check_inputs_exist(patterns: list[str]) -> None:
    """Fail before any work when a pattern matches nothing."""
    for pattern in patterns:
        if not FileSystems.match([pattern])[0].metadata_list and not unreadable_matches([pattern]):
            raise ValueError(f"--input {pattern!r} matches no file")


def unreadable_matches(patterns: list[str]) -> list[str]:
    """Local paths a pattern matches that Beam's match drops: dangling symlinks and symlink
    loops (object stores have neither)."""
    found = set()
    for pattern in patterns:
        if FileSystems.get_scheme(pattern) not in (None, "file"):
            continue
        for path in glob.glob(pattern):
            if os.path.islink(path) and not os.path.exists(path):
                found.add(path)
    return sorted(found)
