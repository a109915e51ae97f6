"""Candidate pairs: MinHash signatures cut into LSH bands, one bucket per band value.

    records ─ Signatures ─ BandBatches ─ ByShard ─ ShardStars ─┬─ star edges (member, center)
                                                              ├─ giant-bucket edges
                                                              └─ giant centers (side input)

A bucket links its members to its best-ranked member by the keep policy (the smallest id,
or the longest text): a star, never all pairs, centred where the keep rule will look for a
twin. Band entries travel in batches, a few elements per bundle and bucket shard (the shard
of a bucket is a hash of its band: `lsh.band_shards`), and each shard finds its buckets by
one sort (`lsh.bucket_stars`): one element per band entry through the runner cost more than
the rest of near dedup (docs/near_dedup.md, "Speed"). A shard holds `16 x documents /
--near-bucket-shards` entries. A bucket larger than `max_bucket_size` (boilerplate shared by
thousands of pages) is a run like any other there; its center is named on a side output so
that verification checks its edges where the members are, and no center gathers them.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from beam_jobs.dedup import lsh
from beam_jobs.dedup.minhash import MinHasher, sig_bytes
from beam_jobs.dedup.near.config import NS, NearDedupConfig, counter
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


# Documents a bundle buffers before it sends its band entries on: their signatures (512 bytes
# each at 128 permutations) and band values stay under about 16 MB.
BATCH_DOCS = 16_384


def _batch_part(ids, ranks, doc, band, values):
    """One shard's part of a batch: the documents it names, and its entries as arrays
    (document index into those, band number, band values) in bytes for the shuffle."""
    named, local = np.unique(doc, return_inverse=True)
    return (
        [ids[i] for i in named],
        [ranks[i] for i in named],
        local.astype("<i4").tobytes(),
        band.astype("<u2").tobytes(),
        np.ascontiguousarray(values, dtype="<u4").tobytes(),
    )


class _BandBatches(beam.DoFn):
    """(id, (rank, sig, file)) → (shard, part of a batch): a bundle's documents are buffered
    and their band entries sent to the shard of each bucket (`lsh.band_shards`) a few
    elements per shard, not one element per band; a bucket lies whole in one shard."""

    def __init__(self, bands: int, rows: int, shards: int, batch_docs: int = BATCH_DOCS):
        self.bands, self.rows, self.shards, self.batch_docs = bands, rows, shards, batch_docs

    def start_bundle(self):
        self.ids, self.ranks, self.sigs = [], [], []

    def process(self, item):
        doc_id, (rank, sig, _) = item
        self.ids.append(doc_id)
        self.ranks.append(rank)
        self.sigs.append(sig)
        if len(self.ids) >= self.batch_docs:
            yield from self._flush()

    def finish_bundle(self):
        for part in self._flush():
            yield WindowedValue(part, GlobalWindow().max_timestamp(), [GlobalWindow()])

    def _flush(self):
        ids, ranks, n = self.ids, self.ranks, len(self.ids)
        if not n:
            return
        sigs = np.frombuffer(b"".join(self.sigs), dtype="<u4").reshape(n, -1)
        self.start_bundle()
        banded = lsh.band_values(sigs, self.bands, self.rows)
        shard = lsh.band_shards(banded, self.shards).ravel()
        values = banded.reshape(n * self.bands, self.rows)  # entry (doc, band) at doc*bands+band
        doc = np.repeat(np.arange(n), self.bands)
        band = np.tile(np.arange(self.bands), n)
        order = np.argsort(shard, kind="stable")
        cuts = np.flatnonzero(np.diff(shard[order])) + 1
        for part in np.split(order, cuts):
            yield int(shard[part[0]]), _batch_part(ids, ranks, doc[part], band[part], values[part])


def _joined(parts, rows: int):
    """A shard's batch parts → (ids, ranks, document index, band, values) of all its entries."""
    ids, ranks, docs, bands, values = [], [], [], [], []
    for part_ids, part_ranks, doc, band, vals in parts:
        docs.append(np.frombuffer(doc, dtype="<i4").astype(np.int64) + len(ids))
        ids.extend(part_ids)
        ranks.extend(part_ranks)
        bands.append(np.frombuffer(band, dtype="<u2"))
        values.append(np.frombuffer(vals, dtype="<u4").reshape(-1, rows))
    return ids, ranks, np.concatenate(docs), np.concatenate(bands), np.concatenate(values)


@beam.typehints.with_output_types(tuple[str, str])
class _ShardStars(beam.DoFn):
    """(shard, [batch parts]) → star edges (member, best-ranked member) of every bucket in the
    shard, counted with the bucket sizes. The edges of a bucket larger than `limit` go to the
    `giant_edges` output and its center to `giant`, for verification where the members are."""

    def __init__(self, rows: int, limit: int):
        self.rows, self.limit = rows, limit

    def setup(self):
        self.sizes = Metrics.distribution(NS, "bucket_size")
        self.buckets, self.shared = counter("buckets"), counter("buckets_shared")
        self.giant_edges = counter("giant_bucket_edges")

    def process(self, item):
        ids, ranks, doc, band, values = _joined(item[1], self.rows)
        rank = np.empty(len(ids), dtype=np.int64)
        rank[sorted(range(len(ids)), key=ranks.__getitem__)] = np.arange(len(ids))
        sizes, members, centers, shared = lsh.bucket_stars(band, values, rank[doc])
        self.buckets.inc(len(sizes))
        self.shared.inc(int(np.count_nonzero(sizes > 1)))
        for size in sizes.tolist():
            self.sizes.update(size)
        giant = shared > self.limit
        self.giant_edges.inc(int(np.count_nonzero(giant)))
        for member, center, big in zip(doc[members].tolist(), doc[centers].tolist(), giant):
            if big:
                yield beam.pvalue.TaggedOutput("giant_edges", (ids[member], ids[center]))
            else:
                yield ids[member], ids[center]
        for center in sorted({ids[c] for c in doc[centers[giant]].tolist()}):
            yield beam.pvalue.TaggedOutput("giant", center)


class Candidates(beam.PTransform):
    """`DedupRecord`s → {'sigs': (id, (rank, sig, file)), 'candidates': (member, center)
    edges, 'giant': (band key, center id) of the giant buckets}."""

    def __init__(self, config: NearDedupConfig):
        super().__init__()
        self.config = config

    def expand(self, records):
        config = self.config
        sigs = records | "Signatures" >> beam.ParDo(_Signatures(config.keep))
        stars = (
            sigs
            | "BandBatches"
            >> beam.ParDo(_BandBatches(config.bands, config.rows, config.bucket_shards))
            | "ByShard" >> beam.GroupByKey()
            | "ShardStars"
            >> beam.ParDo(_ShardStars(config.rows, config.max_bucket_size)).with_outputs(
                "giant_edges", "giant", main="star_edges"
            )
        )
        candidates = (stars.star_edges, stars.giant_edges) | "Candidates" >> beam.Flatten()
        return {"sigs": sigs, "candidates": candidates, "giant": stars.giant}
