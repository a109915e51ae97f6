"""Evaluation sets to decontaminate against: local files read on the machine that builds the
pipeline (nothing is downloaded), and an index of their windows (pure, no Beam).

An item is one record of a JSON Lines or Parquet file (every string value in it, nested ones
too, joined by newlines: question, choices and answer alike) or one non-empty line of a text
file. Its id is its `id` field when it has one, else its line (row) number from 1.
"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pyarrow.parquet as pq

from beam_jobs.overlap.fingerprints import distinct, window_hashes
from beam_jobs.text.normalize import dedup_key


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def _item(record, number: int) -> tuple[str, str]:
    if isinstance(record, dict):
        rid = record.get("id")
        fields = {k: v for k, v in record.items() if k != "id"}
        return (str(rid) if rid is not None else str(number)), "\n".join(_strings(fields))
    return str(number), "\n".join(_strings(record))


def read_items(path: str) -> list[tuple[str, str]]:
    """(item id, text) of every item of an evaluation set file."""
    name = path[:-3] if path.endswith(".gz") else path
    if name.endswith(".parquet"):
        rows = pq.read_table(path).to_pylist()
        return [_item(row, i + 1) for i, row in enumerate(rows)]
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    if name.endswith((".jsonl", ".json")):
        items = []
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    items.append(_item(json.loads(line), number))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from None
        return items
    return [(str(number), line) for number, line in enumerate(lines, 1) if line.strip()]


class EvalIndex:
    """Every window of every item of the sets: sorted hashes with the set and item of each
    (the first item when several share a window), and per item its window count."""

    def __init__(self, sets: dict[str, list[tuple[str, str]]], width: int, words: bool = False):
        self.width, self.words = width, words
        self.names = sorted(sets)
        self.items: list[tuple[str, str, int]] = []  # (set, item id, windows)
        hashes, owners = [], []
        for name in self.names:
            for item_id, text in sets[name]:
                h = distinct(window_hashes(dedup_key(text), width, words))
                owners.append(np.full(len(h), len(self.items), dtype=np.int64))
                hashes.append(h)
                self.items.append((name, item_id, len(h)))
        hashes = np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)
        owners = np.concatenate(owners) if owners else np.zeros(0, np.int64)
        order = np.lexsort((owners, hashes))
        hashes, owners = hashes[order], owners[order]
        first = np.concatenate(([True], hashes[1:] != hashes[:-1])) if len(hashes) else []
        self.hashes, self.owner = hashes[first], owners[first]

    def hits(self, key: str) -> tuple[np.ndarray, int]:
        """(positions in `self.hashes` of the distinct windows of a dedup key found in the
        sets, the key's number of distinct windows)."""
        h = distinct(window_hashes(key, self.width, self.words))
        if not len(self.hashes) or not len(h):
            return np.zeros(0, np.int64), len(h)
        pos = np.minimum(np.searchsorted(self.hashes, h), len(self.hashes) - 1)
        return pos[self.hashes[pos] == h], len(h)

    def first_item(self, found: np.ndarray) -> tuple[str, str]:
        """(set, item id) of the first item (sets by name, items in file order) among the
        owners of found windows."""
        set_name, item_id, _ = self.items[int(self.owner[found].min())]
        return set_name, item_id

    def sets_of(self, found: np.ndarray) -> list[str]:
        """The sets that own any of the found windows."""
        return sorted({self.items[int(i)][0] for i in self.owner[found]})

    def report(self, found: np.ndarray, worst: int = 10) -> dict:
        """Per set, from the positions of the windows found in train: the share of the set's
        windows found, items above 50% and 90% of their windows found, the worst items.
        Containment is of an item's windows whose first owner it is (a window two items share
        counts for the first)."""
        per_item = np.bincount(self.owner[np.unique(found)], minlength=len(self.items))
        owned = np.bincount(self.owner, minlength=len(self.items))
        out = {}
        for name in self.names:
            rows = [(i, it) for i, it in enumerate(self.items) if it[0] == name]
            windows = int(sum(owned[i] for i, _ in rows))
            hit = int(sum(per_item[i] for i, _ in rows))
            shares = [(per_item[i] / owned[i] if owned[i] else 0.0, it[1]) for i, it in rows]
            top = sorted(((-s, item) for s, item in shares if s > 0))[:worst]
            out[name] = {
                "items": len(rows),
                "items_too_short": sum(1 for _, it in rows if not it[2]),
                "windows": windows,
                "windows_in_train": hit,
                "share_in_train": hit / windows if windows else 0.0,
                "items_above_50": sum(1 for s, _ in shares if s > 0.5),
                "items_above_90": sum(1 for s, _ in shares if s > 0.9),
                "worst": [{"id": item, "containment": -s} for s, item in top],
            }
        return out
