"""Statistics: every record's fate as a small event, summed by one global combiner.

Events are tuples: ('read', file, n), ('rejected', reason, file), ('filtered', reason, file),
('duplicate', kind, file), ('kept', split, n_chars, n_tokens, file). `finalize` checks the
identity read = kept + filtered + duplicates + rejected, in total and for every input file.
"""

from __future__ import annotations

from collections import Counter

import apache_beam as beam

from beam_jobs.counts.counting import merge_counters


class StatsFn(beam.CombineFn):
    """Events → stats.json body; `raw=True` returns the Counter itself (to be stored and
    merged later, then finalized with `finalize`)."""

    def __init__(self, raw: bool = False):
        self.raw = raw

    def create_accumulator(self):
        return Counter()

    def add_input(self, acc, event):
        kind = event[0]
        if kind == "read":
            acc["read"] += event[2]
            acc[("file", event[1], "read")] += event[2]
        elif kind == "kept":
            _, split, chars, tokens, file = event
            acc["kept"] += 1
            acc[("file", file, "kept")] += 1
            acc[("split", split, "documents")] += 1
            acc[("split", split, "chars")] += chars
            acc[("split", split, "tokens")] += tokens
            acc[("hist", split, chars.bit_length())] += 1
        else:  # rejected / filtered / duplicate, with a reason
            acc[kind] += 1
            acc[(kind, event[1])] += 1
            acc[("file", event[2], kind)] += 1
        return acc

    def merge_accumulators(self, accs):
        return merge_counters(accs)

    def extract_output(self, acc):
        return acc if self.raw else finalize(acc)


def finalize(acc: Counter) -> dict:
    """Counter of events → the stats.json body."""
    stats = {name: int(acc.get(name, 0))
             for name in ("read", "kept", "filtered", "duplicate", "rejected")}
    stats["duplicates"] = stats.pop("duplicate")
    stats["filtered_by_reason"] = {}
    stats["rejected_by_reason"] = {}
    stats["duplicates_by_kind"] = {}
    stats["files"] = {}
    stats["splits"] = {s: {"documents": 0, "chars": 0, "tokens": 0, "length_histogram": {}}
                       for s in ("train", "val")}
    for key, value in sorted(acc.items(), key=lambda kv: str(kv[0])):
        if not isinstance(key, tuple):
            continue
        if key[0] == "filtered":
            stats["filtered_by_reason"][key[1]] = value
        elif key[0] == "rejected":
            stats["rejected_by_reason"][key[1]] = value
        elif key[0] == "duplicate":
            stats["duplicates_by_kind"][key[1]] = value
        elif key[0] == "file":
            counts = stats["files"].setdefault(key[1], dict.fromkeys(
                ("read", "kept", "filtered", "duplicates", "rejected"), 0))
            counts["duplicates" if key[2] == "duplicate" else key[2]] = value
        elif key[0] == "split":
            stats["splits"][key[1]][key[2]] = value
        elif key[0] == "hist":
            lo = 0 if key[2] == 0 else 1 << (key[2] - 1)
            stats["splits"][key[1]]["length_histogram"][str(lo)] = value
    for split in stats["splits"].values():
        hist = split["length_histogram"]
        split["length_histogram"] = {k: hist[k] for k in sorted(hist, key=int)}
    accounted = stats["kept"] + stats["filtered"] + stats["duplicates"] + stats["rejected"]
    stats["identity_holds"] = stats["read"] == accounted and all(
        f["read"] == f["kept"] + f["filtered"] + f["duplicates"] + f["rejected"]
        for f in stats["files"].values())
    return stats
