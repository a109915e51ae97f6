"""Deterministic train/val split and shard assignment from a hash of the stable id."""

from __future__ import annotations

import hashlib


def id_hash(doc_id: str, salt: str = "") -> int:
    """A 64-bit hash of an id, the same in every process and on every runner."""
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8, person=salt.encode()[:16])
    return int.from_bytes(digest.digest(), "big")


def assign_split(doc_id: str, val_fraction: float, seed: str = "0") -> str:
    return "val" if id_hash(doc_id, "split" + seed) < val_fraction * 2**64 else "train"


def shard_of(key: str, num_shards: int) -> int:
    return id_hash(key, "shard") % num_shards
