"""Content fingerprints of the input files, so `--resume` never reuses a stage built from other
bytes.

A file's digest is sha256 over its decompressed bytes: the read stage computes it as it reads
(no extra pass), and `InputDigests` computes the same in a small Beam job of its own when a
resume must check that local files are unchanged (size and mtime are not enough: `cp -p`,
`rsync -t` and `touch -r` restore them). The job reads every file once, in parallel over the
workers, and moves only one digest per file to the driver; it costs one read of the input,
against the whole dedup stage that a resume saves. Object stores keep a content checksum of
their own (GCS crc32c, S3 ETag, read by `FileSystems.checksum`): those files are checked by
that metadata alone, without reading them.
"""

from __future__ import annotations

import hashlib
import uuid

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems

from beam_jobs.io.files import open_stream

CHUNK_BYTES = 1 << 20


def store_checksum(path: str) -> str | None:
    """The filesystem's own content checksum, or None where it has none (a local file, whose
    Beam 'checksum' is only its size)."""
    if FileSystems.get_scheme(path) in (None, "file"):
        return None
    try:
        return str(FileSystems.checksum(path))
    except Exception:  # a filesystem without checksums
        return None


def hashing_reader(handle, digest):
    """`read(n)` over a decompressed stream that feeds every byte it returns to `digest`.
    `read1` where the stream has it: at most one decompression step, so a truncated gzip
    loses no byte that was decompressed before the break."""
    read_some = getattr(handle, "read1", handle.read)

    def read(n: int) -> bytes:
        data = read_some(n)
        digest.update(data)
        return data

    return read


def file_digest(readable: fileio.ReadableFile) -> str:
    """sha256 of the file's decompressed bytes, exactly as the read stage hashes them (up to
    the break, for a file that breaks midway)."""
    digest = hashlib.sha256()
    try:
        with open_stream(readable) as handle:
            read = hashing_reader(handle, digest)
            while read(CHUNK_BYTES):
                pass
    except Exception:  # the read stage keeps the bytes before the break, and so does this
        pass
    return digest.hexdigest()


class InputDigests(beam.PTransform):
    """PBegin → one JSON file at `out_path` holding {relative path: digest} of the files the
    patterns match (relative to `base`, as the read stage names them)."""

    def __init__(self, patterns: list[str], base: str, out_path: str):
        super().__init__()
        self.patterns, self.base, self.out_path = list(patterns), base, out_path

    def expand(self, pbegin):
        base, out_path = self.base, self.out_path

        def relative(path: str) -> str:
            return path[len(base) :] if path.startswith(base) else path.rsplit("/", 1)[-1]

        def write(pairs):
            from beam_jobs.io.fs import write_json

            write_json(out_path, dict(sorted(pairs)))
            return len(pairs)

        return (
            pbegin
            | "Patterns" >> beam.Create(self.patterns)
            | "Match" >> fileio.MatchAll()
            | "Spread" >> beam.Reshuffle()
            | "Open" >> fileio.ReadMatches()
            | "Digest" >> beam.Map(lambda f: (relative(f.metadata.path), file_digest(f)))
            | "All" >> beam.combiners.ToList()
            | "Write" >> beam.Map(write)
        )


def local_digests(options, patterns: list[str], base: str, work_dir: str) -> dict[str, str]:
    """{relative path: digest} of the inputs, computed by an `InputDigests` job on the run's
    own runner; its result file is removed afterwards."""
    from beam_jobs.io.fs import read_json

    out_path = FileSystems.join(work_dir, f"digests-{uuid.uuid4().hex[:12]}.json")
    pipeline = beam.Pipeline(options=options)
    _ = pipeline | "InputDigests" >> InputDigests(patterns, base, out_path)
    pipeline.run().wait_until_finish()
    try:
        return read_json(out_path) or {}
    finally:
        FileSystems.delete([out_path])
