"""Exact dedup on the dedup key: one document per key survives, the smallest id.

Two steps, so that no combiner holds documents: the smallest id per key hash is a liftable
`min` over short strings (a worker's combiner table stays small however large its bundle),
then each document meets its key's winner in a join and is kept or becomes a duplicate row
there, one at a time — a boilerplate text repeated a million times is streamed, never held.
"""

from __future__ import annotations

import hashlib

import apache_beam as beam

from beam_jobs.records import Duplicate


def key_hash(key: str) -> bytes:
    return hashlib.blake2b(key.encode("utf-8"), digest_size=16).digest()


def _keep_or_drop(item):
    _, groups = item
    winner = next(iter(groups["winner"]))
    for record in groups["doc"]:
        if record.id == winner:
            yield record
        else:
            beam.metrics.Metrics.counter("dedup", "exact_duplicates").inc()
            yield beam.pvalue.TaggedOutput(
                "duplicates", Duplicate(record.id, winner, "exact", 1.0, record.file)
            )


class ExactDedup(beam.PTransform):
    """`DedupRecord`s → {'kept': the smallest id of each key hash, 'duplicates': `Duplicate`
    rows for the others}."""

    def expand(self, records):
        keyed = records | "KeyByHash" >> beam.Map(lambda r: (r.key_hash, r))
        winners = (
            keyed
            | "IdOnly" >> beam.MapTuple(lambda k, r: (k, r.id))
            | "SmallestIdPerKey" >> beam.CombinePerKey(min)
        )
        out = (
            {"doc": keyed, "winner": winners}
            | "JoinWinner" >> beam.CoGroupByKey()
            | "KeepOrDrop" >> beam.FlatMap(_keep_or_drop).with_outputs("duplicates", main="kept")
        )
        return {"kept": out.kept, "duplicates": out.duplicates}


def _redirect(item):
    _, groups = item
    near = list(groups["near"])
    for row in groups["exact"]:
        if near:  # the exact copy's survivor was itself removed as a near duplicate
            row = row._replace(duplicate_of=near[0].duplicate_of, similarity=near[0].similarity)
        yield row


class RedirectToKept(beam.PTransform):
    """Exact-duplicate rows whose `duplicate_of` was later removed by near dedup → pointed at
    the document that was finally kept (text identical to the one they matched, so the
    similarity is that document's)."""

    def __init__(self, near_duplicates):
        super().__init__()
        self.near_duplicates = near_duplicates

    def expand(self, exact_duplicates):
        return (
            {
                "exact": exact_duplicates | "ByKept" >> beam.Map(lambda r: (r.duplicate_of, r)),
                "near": self.near_duplicates | "ByRemoved" >> beam.Map(lambda r: (r.id, r)),
            }
            | "JoinChains" >> beam.CoGroupByKey()
            | "Redirect" >> beam.FlatMap(_redirect)
        )
