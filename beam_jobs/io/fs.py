"""Whole-file writes and JSON on any Beam filesystem (local paths, gs://, s3://, hdfs://).

A file appears under its name only once it is written whole: it is written under a temporary
name that no other writer uses, then renamed over any older file. A failed write removes its
temporary file, so a crash leaves the old file or the new one, never half of one. A local file
is fsynced and moved with `os.replace` (atomic on POSIX); an object store's rename replaces
the object. Local paths need no Beam import (`lm` writes its checkpoints through here).
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid


def is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


@contextlib.contextmanager
def atomic_create(path: str):
    """A writable binary handle for `path`; see the module docstring."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    if is_local(path):
        path, tmp = path.removeprefix("file://"), tmp.removeprefix("file://")
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            with open(tmp, "wb") as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise
        return
    from apache_beam.io.filesystems import FileSystems

    try:
        with FileSystems.create(tmp) as handle:
            yield handle
    except BaseException:
        with contextlib.suppress(Exception):
            FileSystems.delete([tmp])
        raise
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([tmp], [path])


def read_json(path: str):
    """The JSON document at `path`, or None where there is none."""
    if is_local(path):
        path = path.removeprefix("file://")
        if not os.path.exists(path):
            return None
        with open(path, "rb") as handle:
            return json.loads(handle.read().decode("utf-8"))
    from apache_beam.io.filesystems import FileSystems

    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as handle:
        return json.loads(handle.read().decode("utf-8"))


def write_json(path: str, obj, indent: int = 1) -> None:
    with atomic_create(path) as handle:
        handle.write(
            json.dumps(obj, ensure_ascii=False, indent=indent, sort_keys=True).encode("utf-8")
        )
