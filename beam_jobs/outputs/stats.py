"""Statistics: every record's fate as an `Event`, summed by one global combiner.

`finalize` turns the sums into the stats.json body and checks the identity
read = kept + filtered + duplicates + rejected, in total and for every input file.
"""

from __future__ import annotations

from collections import Counter

import apache_beam as beam

from beam_jobs.counts.counting import merge_counters
from beam_jobs.records import Event


class CountEvents(beam.CombineFn):
    """`Event`s → a Counter of their sums (stored in the stage marker, merged with the events
    of the final steps, then turned into stats.json by `finalize`)."""

    def create_accumulator(self):
        return Counter()

    def add_input(self, acc, event: Event):
        kind, file = event.kind, event.file
        acc[kind] += event.n
        acc[("file", file, kind)] += event.n
        if kind == "kept":
            split = event.detail
            acc[("split", split, "documents")] += 1
            acc[("split", split, "chars")] += event.chars
            acc[("split", split, "tokens")] += event.tokens
            acc[("hist", split, event.chars.bit_length())] += 1
        elif kind != "read":  # rejected / filtered / duplicate, with a reason or kind
            acc[(kind, event.detail)] += 1
        return acc

    def merge_accumulators(self, accs):
        return merge_counters(accs)

    def extract_output(self, acc):
        return acc


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
