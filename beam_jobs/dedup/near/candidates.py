"""Candidate pairs: MinHash signatures cut into LSH bands, one bucket per band value.

    records ─ Signatures ─ BandKeys ─┬─ BucketStats (size, smallest id) ─ giant buckets (side)
                                     └─ Buckets (group, star to smallest id) ─ candidate edges

A bucket links its members to its best-ranked member by the keep policy (the smallest id,
or the longest text): a star, never all pairs, centred where the keep rule will look for a
twin. A bucket larger than `max_bucket_size` (boilerplate shared by thousands of pages) is
never grouped: its size and best member come from a liftable combine, and each member links
to that one where it is.
"""

from __future__ import annotations

import typing

import apache_beam as beam
from apache_beam.metrics import Metrics

from beam_jobs.dedup import lsh
from beam_jobs.dedup.minhash import MinHasher, sig_bytes
from beam_jobs.dedup.near.config import NS, NearDedupConfig, counter, counting
from beam_jobs.records import DedupRecord, Document


class AddSignature(beam.DoFn):
    """`Document` → the same document with its MinHash signature (None for an empty key), so
    the signature is computed where the document is and travels instead of the key."""

    def __init__(self, hasher: MinHasher):
        self.hasher = hasher

    def process(self, doc: Document):
        # As bytes: pickling them through the dedup shuffles costs a twentieth of an array's.
        yield doc._replace(sig=sig_bytes(self.hasher.signature(doc.key)) if doc.key else None)


class _Signatures(beam.DoFn):
    """`DedupRecord` → (id, (rank, sig, file)); records without a signature (an empty key)
    are skipped. The input file rides along so each duplicate row is counted against it."""

    def __init__(self, keep: str):
        self.keep = keep

    def setup(self):
        self.signatures = counter("signatures")
        self.empty = counter("empty_keys")

    def process(self, record: DedupRecord):
        if record.sig is None:
            self.empty.inc()
            return
        self.signatures.inc()
        rank = (-record.n_chars, record.id) if self.keep == "longest" else (record.id,)
        yield record.id, (rank, record.sig, record.file)


class _BucketStats(beam.CombineFn):
    """A bucket's (rank, id) members → (size, best member). Liftable, so no worker sees a
    bucket's members; one tuple per step, cheaper than `TupleCombineFn(sum, min)`."""

    def create_accumulator(self):
        return 0, None

    def add_input(self, acc, member):
        size, best = acc
        return size + 1, member if best is None or member < best else best

    def merge_accumulators(self, accumulators):
        size, best = 0, None
        for n, member in accumulators:
            size += n
            if member is not None and (best is None or member < best):
                best = member
        return size, best

    def extract_output(self, acc):
        return acc


class _GiantCenters(beam.DoFn):
    """(band key, (size, best member)) → (band key, center id) of the buckets over `limit`
    members; every bucket counted and its size recorded."""

    def __init__(self, limit: int):
        self.limit = limit

    def setup(self):
        self.sizes = Metrics.distribution(NS, "bucket_size")
        self.buckets, self.shared = counter("buckets"), counter("buckets_shared")

    def process(self, item):
        bkey, (size, best) = item
        self.sizes.update(size)
        self.buckets.inc()
        if size > 1:
            self.shared.inc()
        if size > self.limit:
            yield bkey, best[1]


@beam.typehints.with_output_types(tuple[bytes, typing.Any])
class _RouteBandKey(beam.DoFn):
    """Band keys of giant buckets become edges to the bucket's best member right here."""

    def process(self, item, giant):
        bkey, (rank, doc_id) = item
        center = giant.get(bkey)
        if center is None:
            yield item
        elif doc_id != center:
            yield beam.pvalue.TaggedOutput("giant_edges", (doc_id, center))


def _ranked_star(members):
    """A bucket's (rank, id) members → (member id, best member id) edges."""
    return ((m[1], center[1]) for m, center in lsh.star_edges(members))


class Candidates(beam.PTransform):
    """`DedupRecord`s → {'sigs': (id, (rank, sig, file)), 'candidates': (member, center)
    edges, 'giant': (band key, center id) of the giant buckets}."""

    def __init__(self, config: NearDedupConfig):
        super().__init__()
        self.config = config

    def expand(self, records):
        bands, rows, limit = self.config.bands, self.config.rows, self.config.max_bucket_size
        sigs = records | "Signatures" >> beam.ParDo(_Signatures(self.config.keep))
        band_keys = sigs | "BandKeys" >> beam.FlatMap(
            lambda kv: ((bk, (kv[1][0], kv[0])) for bk in lsh.band_keys(kv[1][1], bands, rows))
        )
        giant = (
            band_keys
            | "BucketStats" >> beam.CombinePerKey(_BucketStats())
            | "GiantBuckets" >> beam.ParDo(_GiantCenters(limit))
        )
        routed = band_keys | "RouteGiant" >> beam.ParDo(
            _RouteBandKey(), giant=beam.pvalue.AsDict(giant)
        ).with_outputs("giant_edges", main="normal")
        giant_edges = routed.giant_edges | "CountGiantEdges" >> beam.Map(
            counting("giant_bucket_edges")
        )
        star_edges = (
            routed.normal
            | "Buckets" >> beam.GroupByKey()
            | "StarEdges" >> beam.FlatMapTuple(lambda _, members: _ranked_star(members))
        )
        candidates = (star_edges, giant_edges) | "Candidates" >> beam.Flatten()
        return {"sigs": sigs, "candidates": candidates, "giant": giant}
