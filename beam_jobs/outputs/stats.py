"""Statistics: every record's fate as an `Event`, summed by one global combiner.

`finalize` turns the sums into the stats.json body and checks the identity
read = kept + filtered + duplicates + rejected, in total and for every input file.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import apache_beam as beam

from beam_jobs.counts.counting import merge_counters
from beam_jobs.records import Event

FATES = ("read", "kept", "filtered", "duplicate", "rejected", "skipped")


class CountEvents(beam.CombineFn):
    """`Event`s → a Counter of their sums (stored in the stage marker, merged with the events
    of the final steps, then turned into stats.json by `finalize`). A record's fate is one of
    `FATES` (skipped: a WARC record that is not a page, such as a request); other kinds (pii)
    are tallies by detail, not fates."""

    def create_accumulator(self):
        return Counter()

    def add_input(self, acc, event: Event):
        kind, file = event.kind, event.file
        if kind not in FATES:
            acc[("tally", kind, event.detail)] += event.n
            return acc
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
            acc[("file_reason", file, kind, event.detail)] += 1
        return acc

    def merge_accumulators(self, accs):
        return merge_counters(accs)

    def extract_output(self, acc):
        return acc


PER_FILE = ("read", "kept", "filtered", "duplicates", "rejected", "skipped")
_BY_KIND = {
    "filtered": "filtered_by_reason",
    "rejected": "rejected_by_reason",
    "duplicate": "duplicates_by_kind",
    "skipped": "skipped_by_reason",
}


def finalize(acc: Counter) -> dict:
    """Counter of events → the stats.json body."""
    stats = {name: int(acc.get(name, 0)) for name in FATES}
    stats["duplicates"] = stats.pop("duplicate")
    for name in _BY_KIND.values():
        stats[name] = {}
    stats["files"], tallies = {}, defaultdict(dict)
    stats["splits"] = {
        s: {"documents": 0, "chars": 0, "tokens": 0, "length_histogram": {}}
        for s in ("train", "val")
    }
    by_reason: dict[str, dict] = defaultdict(dict)
    for key, value in sorted(acc.items(), key=lambda kv: str(kv[0])):
        if not isinstance(key, tuple):
            continue
        if key[0] in _BY_KIND:
            stats[_BY_KIND[key[0]]][key[1]] = value
        elif key[0] == "file":
            counts = stats["files"].setdefault(key[1], dict.fromkeys(PER_FILE, 0))
            counts["duplicates" if key[2] == "duplicate" else key[2]] = value
        elif key[0] == "file_reason" and key[2] != "duplicate":
            by_reason[key[1]].setdefault(f"{key[2]}_by_reason", {})[key[3]] = value
        elif key[0] == "tally":
            tallies[f"{key[1]}_by_kind"][key[2]] = value
        elif key[0] == "split":
            stats["splits"][key[1]][key[2]] = value
        elif key[0] == "hist":
            lo = 0 if key[2] == 0 else 1 << (key[2] - 1)
            stats["splits"][key[1]]["length_histogram"][str(lo)] = value
    for split in stats["splits"].values():
        hist = split["length_histogram"]
        split["length_histogram"] = {k: hist[k] for k in sorted(hist, key=int)}
    for file, counts in stats["files"].items():
        counts.update(by_reason.get(file, {}))
    stats.update(tallies)
    stats["identity_holds"] = all(
        c["read"] == sum(c[name] for name in PER_FILE[1:])
        for c in [stats, *stats["files"].values()]
    )
    stats["warnings"] = warnings(stats)
    return stats


# The flag to look at when a reason removes most of a file.
REASON_FLAGS = {
    "too_short": "--min-chars",
    "too_long": "--max-chars",
    "too_few_letters": "--min-letter-ratio",
    "wrong_script": "--scripts (the default is ja: Japanese scripts; e.g. latin, any)",
    "repeated_lines": "--max-duplicate-line-fraction",
    "repeated_ngrams": "--max-duplicate-ngram-fraction",
    "bad_utf8": "--encoding (or --decode-errors replace)",
    "wrong_encoding": "--encoding",
    "nul_byte": "--encoding (UTF-16 or UTF-32 text is full of NUL bytes)",
    "bad_json": "--format (the file may not be JSON Lines)",
    "missing_text": "--text-field",
    "non_string_text": "--text-field",
    "too_large": "--max-record-bytes",
}
MOST = 0.5


def warnings(stats: dict) -> list[str]:
    """What a person should know: nothing kept at all, or one reason removing more than half
    of a file's records (a default that does not fit the data, such as the script filter on
    English text), with the flag to change."""
    out = []
    if stats["read"] and not stats["kept"]:
        out.append(
            f"no document was kept: of {stats['read']} records, "
            f"{stats['rejected']} were rejected and {stats['filtered']} filtered"
        )
    for file, counts in sorted(stats["files"].items()):
        for kind in ("rejected", "filtered"):
            for reason, n in sorted(counts.get(f"{kind}_by_reason", {}).items()):
                if counts["read"] and n > MOST * counts["read"]:
                    flag = REASON_FLAGS.get(reason, "its flag (see --help)")
                    out.append(
                        f"{file}: {n} of {counts['read']} records {kind} as {reason} "
                        f"({n / counts['read']:.0%}); see {flag}"
                    )
    return out
