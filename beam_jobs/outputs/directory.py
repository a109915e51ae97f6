"""The output directory's rules: a complete run is never mixed with another, and a run that
stops half-way never looks complete (the manifest is written last and deleted first)."""

from __future__ import annotations

import os

from apache_beam.io.filesystems import FileSystems

from beam_jobs.outputs.manifest import MANIFEST
from beam_jobs.outputs.stages import STAGE_DIR

# Written after the dedup stage; manifest first, so deleting in this order never leaves a
# directory that looks complete.
# The contaminated rows of duplicates/ depend on the split, so they are a final output.
CONTAMINATED_SHARD = "duplicates/contaminated-00000-of-00001.parquet"
FINAL_OUTPUTS = (
    MANIFEST,
    "stats.json",
    "vocab.json",
    "train",
    "val",
    "ngrams",
    "report",
    "tokenizer",
    "tokens",
    CONTAMINATED_SHARD,
)
# Written by the dedup stage, marker included.
STAGE_OUTPUTS = (STAGE_DIR, "duplicates", "rejected")


def check_output_path(output: str) -> None:
    """Refuse an output path that is a file, before any work."""
    if (
        FileSystems.get_scheme(output) in (None, "file")
        and os.path.exists(output)
        and (not os.path.isdir(output))
    ):
        raise ValueError(f"--output {output} is a file, not a directory")


def prepare_output_dir(output: str, overwrite: bool, resume: bool) -> None:
    """Refuse to mix runs in one directory unless asked; clear the final outputs when asked.

    `--resume` keeps the materialized dedup stage; `--overwrite` alone removes it too."""

    def exists(name):
        return FileSystems.exists(FileSystems.join(output, name))

    if exists(MANIFEST) and not overwrite:
        raise ValueError(
            f"{output} already holds a complete run ({MANIFEST}); pass "
            "--overwrite to replace it (with --resume to reuse its dedup stage)"
        )
    leftovers = [name for name in FINAL_OUTPUTS + STAGE_OUTPUTS if exists(name)]
    if leftovers and not (overwrite or resume):
        raise ValueError(
            f"{output} holds an incomplete run ({', '.join(leftovers)}); pass "
            "--resume to reuse its completed stages or --overwrite to start over"
        )
    delete_outputs(output, FINAL_OUTPUTS if resume else FINAL_OUTPUTS + STAGE_OUTPUTS)
    # Temporary files a killed run left beside the outputs (atomic writes remove their own
    # on an error, but a killed process cannot).
    leftovers = FileSystems.match([FileSystems.join(output, "*.tmp-*")])[0].metadata_list
    if leftovers:
        FileSystems.delete([m.path for m in leftovers])


def delete_outputs(output: str, names) -> None:
    paths = [FileSystems.join(output, name) for name in names]
    paths = [p for p in paths if FileSystems.exists(p)]
    if paths:
        FileSystems.delete(paths)
