"""Verification: each candidate pair's similarity, by signature estimate, then exactly.

Each document's value (its signature and the place of its text: spill file, input file,
line) is looked up once, by a join of the requests with the records, and sent straight to
the centers that verify its edges. There the signature estimate decides the pairs clearly
above or below the threshold (triage); a doubtful pair carries both places on to the exact
pass, which reads the keys from the spill files, each file once for all its requests, and
routes them to the centers again, where the shingle sets are built (never shuffled) and
compared. Edges to a giant bucket's center are verified where they are, against that
center's feature from a side input, never gathered on one key.
"""

from __future__ import annotations

import typing

import apache_beam as beam

from beam_jobs.dedup.minhash import MinHasher, estimate_jaccard
from beam_jobs.dedup.near.config import NearDedupConfig, counter, counting
from beam_jobs.io import shuffle_bytes
from beam_jobs.io.spill import KeysAtPlaces

UNSURE = "unsure"
# A triage margin wider than any difference of similarities: every pair is left to the
# exact pass (--near-triage-sigmas 0).
EVERY_PAIR = 2.0


def _needed_value(item):
    doc_id, groups = item
    values, needs = list(groups["value"]), list(groups["need"])
    if values and needs:
        yield doc_id, (values[0], needs)


def _value_and_place(record):
    """A record → (id, (signature, place of its text)); none without a signature."""
    if record.sig is not None:
        yield record.id, (record.sig, (record.spill, record.file, record.line))


def _requests_by_id(edge):
    """(member, center) → the lookups by id that bring both values to the center."""
    member, center = edge
    yield member, center
    yield center, center


def _requests_by_place(edge):
    """A doubtful edge (member, center, their places) → the key lookups at those places."""
    member, center, member_place, center_place = edge
    yield member, member_place, center
    yield center, center_place, center


class JoinLookup(beam.PTransform):
    """Verification's lookup over a PCollection of (id, value): requests (id, payload) →
    (id, (value, [payloads])) once per id that has a value. `beam_jobs.io.spill.KeysAtPlaces`
    is the same contract over spill files, for requests that know where the text is."""

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
    """Shared by both verification passes: a value (a signature with its place, or a key
    packed for the shuffle) → its feature (the signature, or the shingle set), and the
    threshold test with its counters. With a `margin` (triage) a similarity within `margin` of
    the threshold decides nothing: the edge is `UNSURE`, with both places, for the exact pass."""

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
            return value[0]
        return self.hasher.shingle_hashes(shuffle_bytes.unpack(value).decode("utf-8"))

    def place(self, value):
        return None if self.mode == "exact" else value[1]

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

    def outcomes(self, member, center, fm, fc, member_place, center_place):
        passed, similarity = self.decide(fm, fc)
        if passed:
            yield member, center, similarity
        elif passed is None:
            yield beam.pvalue.TaggedOutput(UNSURE, (member, center, member_place, center_place))


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
    """A center's own value, if it is a giant bucket's center → (center, (feature, place))."""

    def process(self, item, giant):
        center, entry = item
        if entry[0] == "c" and center in giant:
            yield center, (self.feature(entry[1]), self.place(entry[1]))


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
        fc, pc = self.feature(own), self.place(own)
        for member, value in members:
            yield from self.outcomes(member, center, self.feature(value), fc, self.place(value), pc)


class _VerifyGiantEdge(_Verifier):
    """(member, giant center, member's value) → the edge when it passes, against the
    center's feature from the side input."""

    def process(self, item, centers):
        member, center, value = item
        found = centers.get(center)
        if found is not None:
            fc, pc = found
            yield from self.outcomes(member, center, self.feature(value), fc, self.place(value), pc)


class _VerifyEdges(beam.PTransform):
    """Candidate edges → {'edges': the PCollections of (member, center, similarity) of those
    that pass, 'unsure' (with a `margin`): (member, center, member's place, center's place) of
    the pairs triage leaves undecided}. `requests` turns an edge into the lookups that bring
    both values to its center, `lookup` answers them (id, (value, [centers])); the rest is
    the module docstring."""

    def __init__(
        self,
        lookup,
        requests,
        giant_centers,
        mode: str,
        threshold: float,
        hasher: MinHasher,
        margin: float | None = None,
        first: bool = True,
    ):
        super().__init__()
        self.lookup, self.requests, self.giant_centers = lookup, requests, giant_centers
        self.verifier = (mode, threshold, hasher, margin, first)

    def expand(self, candidates):
        giant_centers = self.giant_centers
        routed = (
            candidates
            | "Requests" >> beam.FlatMap(self.requests)
            | "CandidateValues" >> self.lookup
            | "RouteToCenter"
            >> beam.ParDo(_RouteToCenter(), giant=giant_centers).with_outputs(
                "giant", main="to_center"
            )
        )
        giant_feats = routed.to_center | "GiantCenterFeatures" >> beam.ParDo(
            _GiantFeature(*self.verifier), giant=giant_centers
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
        out = {"edges": [at_center.edges, at_giant.edges]}
        if self.verifier[3] is not None:  # a margin: triage leaves pairs in doubt
            out["unsure"] = (at_center[UNSURE], at_giant[UNSURE]) | "Unsure" >> beam.Flatten()
        return out


class Verify(beam.PTransform):
    """Candidate (member, center) edges → (member, center, similarity) of the edges kept by
    `--near-verify` (similarity None when nothing was verified). `records` are the
    `DedupRecord`s (signatures, and where each text was spilled under `output_dir`), `giant`
    the centers of `Candidates`' giant buckets."""

    def __init__(self, config: NearDedupConfig, records, giant, output_dir: str):
        super().__init__()
        self.config, self.records, self.giant = config, records, giant
        self.output_dir = output_dir

    def expand(self, candidates):
        config = self.config
        if config.verify == "none":
            # A pair sharing several bands comes once from each: linked once.
            return (
                candidates
                | "DistinctCandidates" >> beam.Distinct()
                | "CountCandidates" >> beam.Map(counting("candidate_edges"))
                | "Unverified" >> beam.MapTuple(lambda a, b: (a, b, None))
            )
        # Repeated centers (one per shard that found the bucket) make the same dict.
        giant_centers = beam.pvalue.AsDict(
            self.giant | "GiantCenterFlag" >> beam.Map(lambda center: (center, True))
        )
        verifier = (config.threshold, config.hasher())
        if config.verify == "estimate":
            margin = None
        else:
            margin = config.margin() if config.triage_sigmas else EVERY_PAIR
        # Signatures are small; keys are most of the bytes verification moves. A pair that
        # shares several bands is requested once per band, and verified once: its center
        # receives each value once. Only the pairs the estimate leaves in doubt have their
        # keys read, from the places the triage brought along.
        values = self.records | "Values" >> beam.FlatMap(_value_and_place)
        triage = candidates | "Triage" >> _VerifyEdges(
            JoinLookup(values), _requests_by_id, giant_centers, "estimate", *verifier, margin
        )
        if config.verify == "estimate":
            return triage["edges"] | "VerifiedEdges" >> beam.Flatten()
        exact = triage["unsure"] | "Verify" >> _VerifyEdges(
            KeysAtPlaces(self.output_dir),
            _requests_by_place,
            giant_centers,
            "exact",
            *verifier,
            first=False,
        )
        return triage["edges"] + exact["edges"] | "VerifiedEdges" >> beam.Flatten()
