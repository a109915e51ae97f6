"""Exact dedup on the dedup key: one document per key survives, the smallest id.

The key hash is combined per key, so with combiner lifting a boilerplate text repeated a
million times crosses the shuffle once per worker, not a million times.
"""

from __future__ import annotations

import hashlib

import apache_beam as beam


def key_hash(key: str) -> bytes:
    return hashlib.blake2b(key.encode("utf-8"), digest_size=16).digest()


class KeepSmallestId(beam.CombineFn):
    """Accumulator: (kept doc or None, (id, file) of the others)."""

    def create_accumulator(self):
        return None, []

    def add_input(self, acc, doc):
        return self.merge_accumulators([acc, (doc, [])])

    def merge_accumulators(self, accs):
        kept, others = None, []
        for doc, ids in accs:
            others.extend(ids)
            if doc is None:
                continue
            if kept is None or doc["id"] < kept["id"]:
                if kept is not None:
                    others.append((kept["id"], kept["file"]))
                kept = doc
            else:
                others.append((doc["id"], doc["file"]))
        return kept, others

    def extract_output(self, acc):
        return acc


def _emit(kept_and_others):
    kept, others = kept_and_others
    yield kept
    for other, file in sorted(others):
        beam.metrics.Metrics.counter("dedup", "exact_duplicates").inc()
        yield beam.pvalue.TaggedOutput("duplicates", {
            "id": other, "duplicate_of": kept["id"], "kind": "exact", "similarity": 1.0,
            "file": file})


class ExactDedup(beam.PTransform):
    """docs → {'kept', 'duplicates'} (duplicates as rows of the duplicates table)."""

    def expand(self, docs):
        out = (docs
               | "KeyByHash" >> beam.Map(lambda d: (key_hash(d["key"]), d))
               | "SmallestIdPerKey" >> beam.CombinePerKey(KeepSmallestId())
               | "DropKey" >> beam.Values()
               | "Emit" >> beam.FlatMap(_emit).with_outputs("duplicates", main="kept"))
        return {"kept": out.kept, "duplicates": out.duplicates}


def _redirect(item):
    _, groups = item
    near = list(groups["near"])
    for row in groups["exact"]:
        if near:  # the exact copy's survivor was itself removed as a near duplicate
            row = {**row, "duplicate_of": near[0]["duplicate_of"],
                   "similarity": near[0]["similarity"]}
        yield row


class RedirectToKept(beam.PTransform):
    """Exact-duplicate rows whose `duplicate_of` was later removed by near dedup → pointed at
    the document that was finally kept (text identical to the one they matched, so the
    similarity is that document's)."""

    def __init__(self, near_duplicates):
        super().__init__()
        self.near_duplicates = near_duplicates

    def expand(self, exact_duplicates):
        return ({"exact": exact_duplicates | "ByKept" >> beam.Map(
                    lambda r: (r["duplicate_of"], r)),
                 "near": self.near_duplicates | "ByRemoved" >> beam.Map(lambda r: (r["id"], r))}
                | "JoinChains" >> beam.CoGroupByKey()
                | "Redirect" >> beam.FlatMap(_redirect))
