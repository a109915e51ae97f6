"""The keep policy: one document per component survives, the best by `--near-keep` (the
smallest id, or the longest text with ties by id); every other member becomes a `Duplicate`
row pointing at it, with the signature estimate of their Jaccard as its similarity."""

from __future__ import annotations

import apache_beam as beam

from beam_jobs.dedup.minhash import estimate_jaccard
from beam_jobs.dedup.near.config import counter
from beam_jobs.records import Duplicate


def _attach_label(item):
    node, groups = item
    labels = list(groups["label"])
    if labels:
        rank, sig, file = next(iter(groups["sig"]))
        yield labels[0], (rank, node, sig, file)


def _duplicate_rows(item):
    _, groups = item
    counter("components").inc()
    _, kept_id, kept_sig, _ = next(iter(groups["kept"]))
    for _, node, sig, file in groups["member"]:
        if node != kept_id:
            counter("near_duplicates").inc()
            yield Duplicate(node, kept_id, "near", estimate_jaccard(sig, kept_sig), file)


class KeepOnePerComponent(beam.PTransform):
    """(node, component label) pairs and the (id, (rank, sig, file)) of `Candidates` →
    `Duplicate` rows for every member of a component but its best-ranked one."""

    def __init__(self, sigs):
        super().__init__()
        self.sigs = sigs

    def expand(self, labels):
        members = ({"label": labels, "sig": self.sigs}
                   | "JoinLabels" >> beam.CoGroupByKey()
                   | "AttachLabel" >> beam.FlatMap(_attach_label))
        # Ranks are unique (they end with the id), so the minimum tuple is the best rank and
        # never compares signatures.
        kept = members | "KeepPolicy" >> beam.CombinePerKey(min)
        return ({"kept": kept, "member": members}
                | "JoinKept" >> beam.CoGroupByKey()
                | "DuplicateRows" >> beam.FlatMap(_duplicate_rows))
