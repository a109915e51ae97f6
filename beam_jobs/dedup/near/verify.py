"""Verification: each candidate pair's similarity, by signature estimate or exactly.

Each document's value (its dedup key, read from its spill file, or its signature) is looked up
once and sent straight to the centers that verify its edges; features (shingle sets) are built
there, never shuffled. With triage (the default), pairs whose signature estimate is clearly
above or below the threshold are decided by it, and only the doubtful ones have their keys read.
Edges to a giant bucket's center are verified where they are, against that center's feature
from a side input, never gathered on one key.
"""

from __future__ import annotations

import typing

import apache_beam as beam

from beam_jobs.dedup.minhash import MinHasher, estimate_jaccard
from beam_jobs.dedup.near.config import NearDedupConfig, counter, counting
from beam_jobs.io import shuffle_bytes

UNSURE = "unsure"


def _needed_value(item):
    doc_id, groups = item
    values, needs = list(groups["value"]), list(groups["need"])
    if values and len(values[0]) and needs:
        yield doc_id, (values[0], needs)


class JoinLookup(beam.PTransform):
    """Verification's lookup over a PCollection of (id, value), the value being a dedup key
    or a signature: requests (id, payload) → (id, (value, [payloads])) once per id that has a
    (non-empty) value. `beam_jobs.io.spill.KeysFromSpill` is the same contract over spill files."""

    def __init__(self, values):
        super().__init__()
        self.values = values

    def expand(self, requests):
        return (
            {"need": requests, "value": self.values}
            | "JoinRequests" >> beam.CoGroupByKey()
            | "NeededValues" >> beam.FlatMap(_needed_value)
        )


def _similarity(mode, fa, fb):
    """Exact Jaccard of two shingle sets, or the estimate from two signatures."""
    return MinHasher.jaccard(fa, fb) if mode == "exact" else estimate_jaccard(fa, fb)


class _Verifier(beam.DoFn):
    """Shared by both verification steps: a value (a key, packed for the shuffle, or a
    signature) → its feature (shingle set or the signature itself), and the threshold test
    with its counters. With a `margin` (triage) a similarity within `margin` of the threshold
    decides nothing: the edge is `UNSURE`, for the exact pass."""

    def __init__(
        self,
        mode: str,
        threshold: float,
        hasher: MinHasher,
        margin: float | None = None,
        first: bool = True,
    ):
        self.mode, self.threshold, self.hasher = mode, threshold, hasher
        self.margin, self.first = margin, first
        self.candidates = counter("candidate_edges")
        self.dropped = counter("edges_dropped_by_verification")
        self.by_signature = counter("edges_decided_by_signature")
        self.exactly = counter("edges_verified_exactly")

    def feature(self, value):
        if self.mode != "exact":
            return value
        return self.hasher.shingle_hashes(shuffle_bytes.unpack(value).decode("utf-8"))

    def decide(self, fa, fb) -> tuple[bool | None, float]:
        """(passed, similarity); passed is None where triage leaves the pair undecided."""
        if self.first:  # every candidate is counted once, by the first pass that sees it
            self.candidates.inc()
        similarity = _similarity(self.mode, fa, fb)
        if self.margin is not None and abs(similarity - self.threshold) <= self.margin:
            return None, similarity
        (self.exactly if self.mode == "exact" else self.by_signature).inc()
        if similarity >= self.threshold:
            return True, similarity
        self.dropped.inc()
        return False, similarity

    def outcomes(self, member, center, fa, fb):
        passed, similarity = self.decide(fa, fb)
        if passed:
            yield member, center, similarity
        elif passed is None:
            yield beam.pvalue.TaggedOutput(UNSURE, (member, center))


@beam.typehints.with_output_types(tuple[str, typing.Any])
class _RouteToCenter(beam.DoFn):
    """(id, (value, destinations)) → the value to every center that verifies an edge of the
    document: (center, ("m", id, value)), and (id, ("c", value)) where it is a center itself.
    An edge to a giant bucket's center goes to the `giant` output instead, to be verified
    where it is against that center's feature (a side input), never gathered on one key."""

    def process(self, item, giant):
        doc_id, (value, destinations) = item
        if isinstance(value, str):  # a key (not a signature): most of the bytes moved
            value = shuffle_bytes.pack(value.encode("utf-8"))
        for dest in sorted(set(destinations)):
            if dest == doc_id:
                yield doc_id, ("c", value)
            elif dest in giant:
                yield beam.pvalue.TaggedOutput("giant", (doc_id, dest, value))
            else:
                yield dest, ("m", doc_id, value)


class _GiantFeature(_Verifier):
    def process(self, item):
        center, (_, value) = item
        yield center, self.feature(value)


class _VerifyAtCenter(_Verifier):
    """(center, [its own value, (member, value) ...]) → verified (member, center) edges."""

    def process(self, item):
        center, entries = item
        own, members = None, []
        for entry in entries:
            if entry[0] == "c":
                own = entry[1]
            else:
                members.append(entry[1:])
        if own is None:
            return
        fc = self.feature(own)
        for member, value in members:
            yield from self.outcomes(member, center, self.feature(value), fc)


class _VerifyGiantEdge(_Verifier):
    """(member, giant center, member's value) → the edge when it passes, against the
    center's feature from the side input."""

    def process(self, item, centers):
        member, center, value = item
        fc = centers.get(center)
        if fc is not None:
            yield from self.outcomes(member, center, self.feature(value), fc)


class _VerifyEdges(beam.PTransform):
    """Candidate (member, center) edges → {'edges': (member, center, similarity) of those that
    pass, 'unsure': the (member, center) pairs a triage (`margin`) leaves undecided}. Each
    document's value (key or signature) is looked up once and sent straight to the centers
    that verify its edges; features (shingle sets) are built there, never shuffled. Edges to a
    giant bucket's center are verified where they are, against that center's feature from a
    side input."""

    def __init__(
        self,
        lookup,
        giant_centers,
        mode: str,
        threshold: float,
        hasher: MinHasher,
        margin: float | None = None,
        first: bool = True,
    ):
        super().__init__()
        self.lookup, self.giant_centers = lookup, giant_centers
        self.verifier = (mode, threshold, hasher, margin, first)

    def expand(self, candidates):
        giant_centers = self.giant_centers
        routed = (
            candidates
            | "Requests" >> beam.FlatMap(lambda e: ((e[0], e[1]), (e[1], e[1])))
            | "CandidateValues" >> self.lookup
            | "RouteToCenter"
            >> beam.ParDo(_RouteToCenter(), giant=giant_centers).with_outputs(
                "giant", main="to_center"
            )
        )
        giant_feats = (
            routed.to_center
            | "GiantCenterValues"
            >> beam.Filter(
                lambda kv, centers: kv[1][0] == "c" and kv[0] in centers, centers=giant_centers
            )
            | "GiantCenterFeatures" >> beam.ParDo(_GiantFeature(*self.verifier))
        )
        at_center = (
            routed.to_center
            | "ByCenter" >> beam.GroupByKey()
            | "VerifyAtCenter"
            >> beam.ParDo(_VerifyAtCenter(*self.verifier)).with_outputs(UNSURE, main="edges")
        )
        at_giant = routed.giant | "VerifyGiantEdges" >> beam.ParDo(
            _VerifyGiantEdge(*self.verifier), centers=beam.pvalue.AsDict(giant_feats)
        ).with_outputs(UNSURE, main="edges")
        return {
            "edges": (at_center.edges, at_giant.edges) | "Passed" >> beam.Flatten(),
            "unsure": (at_center[UNSURE], at_giant[UNSURE]) | "Unsure" >> beam.Flatten(),
        }


class Verify(beam.PTransform):
    """Candidate (member, center) edges → (member, center, similarity) of the edges kept by
    `--near-verify` (similarity None when nothing was verified). `sigs` are the
    (id, (rank, sig, file)) of `Candidates`, `giant` its giant buckets, `lookup` gives each
    candidate's dedup key (`beam_jobs.io.spill.KeysFromSpill`)."""

    def __init__(self, config: NearDedupConfig, sigs, giant, lookup):
        super().__init__()
        self.config, self.sigs, self.giant, self.lookup = config, sigs, giant, lookup

    def expand(self, candidates):
        config = self.config
        # A pair sharing several bands comes once from each: verified (or linked) once, and
        # its requests for keys and signatures sent once (a tenth of them on corpora/ja).
        candidates = candidates | "DistinctCandidates" >> beam.Distinct()
        if config.verify == "none":
            return (
                candidates
                | "CountCandidates" >> beam.Map(counting("candidate_edges"))
                | "Unverified" >> beam.MapTuple(lambda a, b: (a, b, None))
            )
        giant_centers = beam.pvalue.AsDict(
            self.giant
            | "GiantCenterIds" >> beam.MapTuple(lambda _, center: center)
            | "GiantCenterDistinct" >> beam.Distinct()
            | "GiantCenterFlag" >> beam.Map(lambda center: (center, True))
        )
        verifier = (config.threshold, config.hasher())
        if config.verify == "exact" and config.triage_sigmas == 0:
            return (
                candidates
                | "Verify" >> _VerifyEdges(self.lookup, giant_centers, "exact", *verifier)
            )["edges"]
        sig_lookup = JoinLookup(self.sigs | "SigValues" >> beam.MapTuple(lambda i, v: (i, v[1])))
        if config.verify == "estimate":
            return (
                candidates
                | "Verify" >> _VerifyEdges(sig_lookup, giant_centers, "estimate", *verifier)
            )["edges"]
        # Signatures are small; keys are most of the bytes verification moves. Only the pairs
        # the estimate leaves in doubt have their keys read.
        triage = candidates | "Triage" >> _VerifyEdges(
            sig_lookup, giant_centers, "estimate", *verifier, margin=config.margin()
        )
        exact = triage["unsure"] | "Verify" >> _VerifyEdges(
            self.lookup, giant_centers, "exact", *verifier, first=False
        )
        return (triage["edges"], exact["edges"]) | "VerifiedEdges" >> beam.Flatten()
