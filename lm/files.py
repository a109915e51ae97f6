"""Whole-file writes for `lm`'s outputs (checkpoints, metrics, caches, reports).

Both go through the project's one atomic writer, `beam_jobs.io.fs.atomic_create` (temporary
name, fsync, rename), so a crash leaves the old file or the new one, never half of one. It is
imported on first use: reading commands (`lm.generate`, `lm.interpret`) need no Beam.
"""

from __future__ import annotations

import json


def write_json(path: str, obj) -> None:
    """`obj` as indented UTF-8 JSON, keys in the order given (people read these files)."""
    from beam_jobs.io.fs import atomic_create

    with atomic_create(path) as handle:
        handle.write(json.dumps(obj, indent=2, ensure_ascii=False).encode("utf-8"))


def save_torch(path: str, obj) -> None:
    """`torch.save(obj)` to `path`."""
    import torch

    from beam_jobs.io.fs import atomic_create

    with atomic_create(path) as handle:
        torch.save(obj, handle)
