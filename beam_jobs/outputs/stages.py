"""Materialized stages, so a rerun can reuse work instead of redoing it.

The dedup stage (read → clean → spill → exact and near dedup) writes every clean document to
spill files under `DIR/_stages/dedup/spill/`, the duplicate and rejected tables, and last a
marker, `stage.json`, holding a key over the options that stage depends on and the input
files' metadata, plus the small results the rest needs (and, after the run, its Beam
counters). One Beam job runs both the stage and the rest; with `--resume`, a marker with the
same key means the job starts from the stage's files instead of the input.
"""

from __future__ import annotations

import hashlib
import json

from apache_beam.io.filesystems import FileSystems

from beam_jobs.io.fingerprint import store_checksum
from beam_jobs.io.fs import read_json, write_json
from beam_jobs.tokens.options import TOKEN_OPTIONS

STAGE_DIR = "_stages/dedup"
SPILL_DIR = STAGE_DIR + "/spill"
MARKER = STAGE_DIR + "/stage.json"
# Options that only the steps after the dedup stage read: changing them keeps it reusable.
SECOND_JOB_OPTIONS = (
    frozenset(
        {
            "output",
            "overwrite",
            "resume",
            "report",
            "val_fraction",
            "split_seed",
            "row_group_size",
            "min_count",
            "max_vocab",
            "ngram_order",
            "ngram_shards",
            "ngram_min_count",
            "ngram_buffer_mb",
            # the split by containment, the leakage report and decontamination (beam_jobs/overlap/)
            # read the stage's spill files: a resume redoes them with the new values
            "containment_split",
            "leakage_report",
            "containment_threshold",
            "overlap_window",
            "overlap_sample",
            "overlap_max_group",
            "max_val_component",
            "overlap_cc_rounds",
            "decontaminate",
            "decontaminate_mode",
            "decontaminate_chars",
            "decontaminate_words",
        }
    )
    | TOKEN_OPTIONS
)


def input_metadata(patterns: list[str]) -> list[dict]:
    """Path, size, modification time and, on object stores, the store's content checksum of
    every input file (metadata only: no content is read here)."""
    files = {}
    for result in FileSystems.match(list(patterns)):
        for meta in result.metadata_list:
            files[meta.path] = {
                "path": meta.path,
                "bytes": meta.size_in_bytes,
                "mtime": getattr(meta, "last_updated_in_seconds", None),
                "checksum": store_checksum(meta.path),
            }
    return [files[p] for p in sorted(files)]


def stage_key(options: dict, settings: dict, inputs: list[dict]) -> str:
    relevant = {k: v for k, v in options.items() if k not in SECOND_JOB_OPTIONS}
    blob = json.dumps(
        {"options": relevant, "settings": settings, "inputs": inputs}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def read_marker(output_dir: str) -> dict | None:
    return read_json(FileSystems.join(output_dir, MARKER))


def write_marker(output_dir: str, marker: dict) -> None:
    write_json(FileSystems.join(output_dir, MARKER), marker)


def encode_counter(counter) -> list:
    """A Counter with tuple keys → JSON-able pairs (and back with `decode_counter`)."""
    return sorted(
        ([list(k) if isinstance(k, tuple) else k, v] for k, v in counter.items()),
        key=lambda kv: json.dumps(kv[0]),
    )


def decode_counter(pairs: list):
    from collections import Counter

    return Counter({tuple(k) if isinstance(k, list) else k: v for k, v in pairs})
