"""The leakage report's arithmetic (pure, no Beam): from each validation document's
fingerprint count and how many of them occur in train, the share of validation windows found
in train, the documents above 50% and 90% containment, and the worst ones by id.

Fingerprints are a hash sample of the distinct windows of each document's dedup key
(fingerprints.py), so the shares are unbiased estimates of the shares of all windows, exact
when the sample keeps every window (`--overlap-sample 1`, or `--sample 1` for the CLI).
"""

from __future__ import annotations

import numpy as np

WORST = 10
LEVELS = (0.5, 0.9)


def _name(level: float) -> str:
    return f"above_{round(level * 100)}"


def new() -> dict:
    counts = {"documents": 0, "measured": 0, "chars": 0, "windows": 0, "in_train": 0}
    for level in LEVELS:
        counts[_name(level)] = counts[_name(level) + "_chars"] = 0
    return {**counts, "worst": []}


def add(acc: dict, doc_id: str, hits: int, windows: int, chars: int) -> dict:
    """Count one validation document: `windows` fingerprints, `hits` of them in train."""
    acc["documents"] += 1
    acc["chars"] += chars
    if not windows:  # shorter than a window, or no window was sampled
        return acc
    acc["measured"] += 1
    acc["windows"] += windows
    acc["in_train"] += hits
    share = hits / windows
    for level in LEVELS:
        if share > level:
            name = _name(level)
            acc[name] += 1
            acc[name + "_chars"] += chars
    if hits:
        acc["worst"] = sorted([*acc["worst"], (-share, doc_id, chars)])[:WORST]
    return acc


def merge(accs) -> dict:
    out = new()
    for acc in accs:
        for name, value in acc.items():
            if name != "worst":
                out[name] += value
        out["worst"] = sorted([*out["worst"], *(tuple(w) for w in acc["worst"])])[:WORST]
    return out


def finish(acc: dict, settings: dict) -> dict:
    """The stats.json entry."""
    out = {k: v for k, v in acc.items() if k != "worst"}
    out["share_in_train"] = acc["in_train"] / acc["windows"] if acc["windows"] else 0.0
    for level in LEVELS:
        name = _name(level)
        out[name + "_share_of_chars"] = acc[name + "_chars"] / acc["chars"] if acc["chars"] else 0.0
    out["worst"] = [{"id": i, "containment": round(-s, 6), "chars": c} for s, i, c in acc["worst"]]
    out["settings"] = settings
    return out


def measure(train: np.ndarray, val_docs, settings: dict) -> dict:
    """The report in one process: `train` the distinct fingerprints of train (sorted uint64),
    `val_docs` (id, fingerprints, chars) of every validation document."""
    acc = new()
    for doc_id, prints, chars in val_docs:
        if len(train) and len(prints):
            pos = np.minimum(np.searchsorted(train, prints), len(train) - 1)
            hits = int(np.count_nonzero(train[pos] == prints))
        else:
            hits = 0
        add(acc, doc_id, hits, len(prints), chars)
    return finish(acc, settings)


def small_val_warning(stats: dict, val_fraction: float) -> str | None:
    """A warning when the validation split holds less than half the characters asked for
    (the containment split sends components too large for it to train)."""
    chars = {name: split["chars"] for name, split in stats["splits"].items()}
    total = sum(chars.values())
    if not total or "leakage" not in stats or chars["val"] >= 0.5 * val_fraction * total:
        return None
    return (
        f"the validation split holds {chars['val'] / total:.2%} of the characters "
        f"(--val-fraction {val_fraction}): documents that contain one another share a "
        "split, and components too large for val go to train; see docs/leakage.md "
        "(--max-val-component, --containment-threshold, --no-containment-split)"
    )
