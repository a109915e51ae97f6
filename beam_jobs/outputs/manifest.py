"""The manifest: the contract `lm` reads, written last as the mark of a complete directory."""

from __future__ import annotations

import hashlib

from apache_beam.io.filesystems import FileSystems

from beam_jobs import SCHEMA_VERSION
from beam_jobs.io.fs import read_json, write_json

MANIFEST = "manifest.json"


def input_fingerprint(files: list[dict]) -> str:
    """sha256 over the sorted (relative path, content digest) of every input file."""
    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: f["path"]):
        h.update(f"{f['path']}\0{f['digest']}\n".encode())
    return h.hexdigest()


def split_entry(shards: list[dict]) -> dict:
    shards = sorted(shards, key=lambda s: s["path"])
    return {
        "shards": [
            {
                "path": s["path"],
                "rows": s["rows"],
                "tokens": s["n_tokens"],
                "chars": s["n_chars"],
                "sha256": s["sha256"],
            }
            for s in shards
        ],
        "rows": sum(s["rows"] for s in shards),
        "tokens": sum(s["n_tokens"] for s in shards),
    }


def build_manifest(
    *,
    options: dict,
    settings: dict,
    files: list[dict],
    doc_shards: list[dict],
    ngram_shards: list[dict],
    duplicate_shards: list[dict],
    rejected_shards: list[dict],
    report: list[str],
) -> dict:
    by_split = {"train": [], "val": []}
    for shard in doc_shards:
        by_split[shard["split"]].append(shard)

    def paths(shards):
        return {"shards": sorted(s["path"] for s in shards), "rows": sum(s["rows"] for s in shards)}

    return {
        "schema_version": SCHEMA_VERSION,
        "complete": True,
        "created_by": "beam_jobs.prepare",
        "options": options,
        **settings,
        "vocab": "vocab.json",
        "stats": "stats.json",
        "report": report,
        "splits": {name: split_entry(shards) for name, shards in by_split.items()},
        "ngrams": {"order": options["ngram_order"], **paths(ngram_shards)},
        "duplicates": paths(duplicate_shards),
        "rejected": paths(rejected_shards),
        "input": {
            "files": sorted(files, key=lambda f: f["path"]),
            "fingerprint": input_fingerprint(files),
        },
    }


def write_manifest(output_dir: str, manifest: dict) -> None:
    write_json(FileSystems.join(output_dir, MANIFEST), manifest)


def read_manifest(output_dir: str) -> dict | None:
    return read_json(FileSystems.join(output_dir, MANIFEST))
