"""Whole-file writes and JSON on any Beam filesystem (local paths, gs://, s3://, hdfs://).

A file appears under its name only once it is written whole: it is written under a temporary
name that no other writer uses, then renamed over any older file. A failed write removes its
temporary file, so a crash leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid

from apache_beam.io.filesystems import FileSystems


@contextlib.contextmanager
def atomic_create(path: str):
    """A writable binary handle for `path`; see the module docstring."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    try:
        with FileSystems.create(tmp) as handle:
            yield handle
            if hasattr(handle, "fileno"):  # a local file: on disk before it gets its name
                handle.flush()
                os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(Exception):
            FileSystems.delete([tmp])
        raise
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([tmp], [path])


def read_json(path: str):
    """The JSON document at `path`, or None where there is none."""
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as handle:
        return json.loads(handle.read().decode("utf-8"))


def write_json(path: str, obj, indent: int = 1) -> None:
    with atomic_create(path) as handle:
        handle.write(json.dumps(obj, ensure_ascii=False, indent=indent,
                                sort_keys=True).encode("utf-8"))
