"""Near-duplicate removal: MinHash-LSH candidates, verification, distributed connected components.

    docs ─ Signatures ─ Band ─┬─ BucketStats (combine: size, smallest id) ─ giant buckets (side)
                              └─ Buckets (group, star to smallest id) ─ candidate edges
         ─ Triage (signatures at each edge's center: clear pairs decided by the estimate)
         ─ Verify (the doubtful pairs' keys at their centers: exact shingle Jaccard) ─ edges
         ─ ConnectedComponents (R rounds large-star/small-star, then a residual finish)
         ─ Keep (one per component by the keep policy) ─ {'kept', 'duplicates'}

No step gathers the corpus, its signatures or its edges on one worker: buckets above
`max_bucket_size` skip the grouping (their smallest id comes from a combine), groups per node
are streamed, and the only single-key step is the union-find of the edges that have not
converged after the rounds (zero when they converged; counted). Every decision is a counter in
the `near_dedup` namespace. The output depends only on the set of input documents.
"""

from __future__ import annotations

import argparse
import logging
import typing

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from beam_jobs.dedup import lsh
from beam_jobs.dedup.minhash import (
    DEFAULT_NUM_PERM,
    DEFAULT_SCHEME,
    DEFAULT_SEED,
    SCHEMES,
    MinHasher,
)
from beam_jobs.dedup.shingles import DEFAULT_SHINGLE_SIZE
from beam_jobs.io import shuffle_bytes
from beam_jobs.runtime.flags import BoolFlag

NS = "near_dedup"
VERIFY_MODES = ("estimate", "exact", "none")
KEEP_POLICIES = ("smallest", "longest")
DEFAULT_THRESHOLD = 0.8
DEFAULT_FN_WEIGHT = 0.95
DEFAULT_CC_ROUNDS = 6
DEFAULT_MAX_BUCKET = 1000
DEFAULT_TRIAGE_SIGMAS = 4.0
RESIDUAL_WARN = 100_000
_PARAMS = (
    "threshold",
    "num_perm",
    "shingle_size",
    "bands",
    "rows",
    "lsh_fn_weight",
    "minhash_scheme",
    "minhash_seed",
    "verify",
    "keep",
    "cc_rounds",
    "max_bucket_size",
    "triage_sigmas",
)

_log = logging.getLogger(__name__)


def _counter(name):
    return Metrics.counter(NS, name)


def _counting(name):
    """A pass-through Map function that counts the elements it sees."""

    def count(element):
        _counter(name).inc()
        return element

    return count


# ── options ──────────────────────────────────────────────────────────────────────────────────


def add_near_dedup_args(parser: argparse.ArgumentParser) -> None:
    """Register the near-dedup flags (dests in snake_case)."""
    parser.add_argument(
        "--near-dedup",
        dest="near_dedup",
        action=BoolFlag,
        default=True,
        help="remove near duplicates with MinHash-LSH (default on)",
    )
    parser.add_argument(
        "--threshold",
        dest="threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help="Jaccard similarity of character shingles that makes a near duplicate",
    )
    parser.add_argument(
        "--num-perm",
        dest="num_perm",
        type=int,
        default=DEFAULT_NUM_PERM,
        help="MinHash permutations (hash values per signature)",
    )
    parser.add_argument(
        "--shingle-size",
        dest="shingle_size",
        type=int,
        default=DEFAULT_SHINGLE_SIZE,
        help="characters per shingle of the dedup key",
    )
    parser.add_argument(
        "--bands",
        dest="bands",
        type=int,
        default=None,
        help="LSH bands (with --rows; default: datasketch's optimum for --threshold)",
    )
    parser.add_argument("--rows", dest="rows", type=int, default=None, help="LSH rows per band")
    parser.add_argument(
        "--lsh-fn-weight",
        dest="lsh_fn_weight",
        type=float,
        default=DEFAULT_FN_WEIGHT,
        help="weight of false negatives (false positives: 1 minus it) in the bands x rows rule; "
        "verification removes false positives, so missing pairs cost more",
    )
    parser.add_argument(
        "--minhash-scheme",
        dest="minhash_scheme",
        choices=SCHEMES,
        default=DEFAULT_SCHEME,
        help="datasketch permutation scheme (affine32: datasketch 2.x default)",
    )
    parser.add_argument(
        "--minhash-seed",
        dest="minhash_seed",
        type=int,
        default=DEFAULT_SEED,
        help="seed of the permutation parameters (datasketch's `seed`)",
    )
    parser.add_argument(
        "--verify",
        dest="verify",
        choices=VERIFY_MODES,
        default="exact",
        help="drop candidate pairs below --threshold by signature estimate, by exact "
        "shingle Jaccard, or not at all",
    )
    parser.add_argument(
        "--triage-sigmas",
        dest="triage_sigmas",
        type=float,
        default=DEFAULT_TRIAGE_SIGMAS,
        help="with --verify exact, a pair whose signature estimate lies this many standard "
        "errors above or below --threshold is decided by the estimate, without reading the "
        "documents; 0 verifies every pair exactly",
    )
    parser.add_argument(
        "--keep",
        dest="keep",
        choices=KEEP_POLICIES,
        default="smallest",
        help="which document of a near-duplicate cluster survives",
    )
    parser.add_argument(
        "--cc-rounds",
        dest="cc_rounds",
        type=int,
        default=DEFAULT_CC_ROUNDS,
        help="large-star/small-star rounds before the residual finish",
    )
    parser.add_argument(
        "--max-bucket-size",
        dest="max_bucket_size",
        type=int,
        default=DEFAULT_MAX_BUCKET,
        help="LSH buckets larger than this are linked without grouping their members",
    )


def validate_near_dedup_args(opts) -> None:
    """Raise ValueError with a one-line message for a bad near-dedup option value."""
    if not 0.0 < opts.threshold < 1.0:
        raise ValueError(f"--threshold must be in (0, 1), got {opts.threshold}")
    if not 1 <= opts.num_perm <= 4096:
        raise ValueError(f"--num-perm must be in [1, 4096], got {opts.num_perm}")
    if opts.shingle_size < 1:
        raise ValueError(f"--shingle-size must be >= 1, got {opts.shingle_size}")
    if (opts.bands is None) != (opts.rows is None):
        raise ValueError("--bands and --rows must be given together")
    if opts.bands is not None:
        if opts.bands < 1 or opts.rows < 1:
            raise ValueError(f"--bands and --rows must be >= 1, got {opts.bands} x {opts.rows}")
        if opts.bands * opts.rows > opts.num_perm:
            raise ValueError(
                f"--bands x --rows ({opts.bands} x {opts.rows}) exceeds --num-perm {opts.num_perm}"
            )
    if not 0.0 < opts.lsh_fn_weight < 1.0:
        raise ValueError(f"--lsh-fn-weight must be in (0, 1), got {opts.lsh_fn_weight}")
    if opts.minhash_scheme not in SCHEMES:
        raise ValueError(f"--minhash-scheme must be one of {SCHEMES}, got {opts.minhash_scheme!r}")
    if not 0 <= opts.minhash_seed < 2**32:
        raise ValueError(f"--minhash-seed must be in [0, 2**32), got {opts.minhash_seed}")
    if opts.verify not in VERIFY_MODES:
        raise ValueError(f"--verify must be one of {VERIFY_MODES}, got {opts.verify!r}")
    if not opts.triage_sigmas >= 0:
        raise ValueError(f"--triage-sigmas must be >= 0, got {opts.triage_sigmas}")
    if opts.keep not in KEEP_POLICIES:
        raise ValueError(f"--keep must be one of {KEEP_POLICIES}, got {opts.keep!r}")
    if opts.cc_rounds < 1:
        raise ValueError(f"--cc-rounds must be >= 1, got {opts.cc_rounds}")
    if opts.max_bucket_size < 2:
        raise ValueError(f"--max-bucket-size must be >= 2, got {opts.max_bucket_size}")


# ── signatures and buckets ──────────────────────────────────────────────────────────────────


class _Signature(beam.DoFn):
    """doc -> (id, (rank, sig, file)); docs whose key has no shingle (empty key) are skipped.
    The input file rides along so that each duplicate row can be counted against its file."""

    def __init__(self, hasher: MinHasher, keep: str):
        self.hasher = hasher
        self.keep = keep
        self.signatures = _counter("signatures")
        self.empty = _counter("empty_keys")

    def process(self, doc):
        if "sig" in doc:
            sig = doc["sig"]
        else:
            sig = self.hasher.signature(doc["key"]) if doc["key"] else None
        if sig is None:
            self.empty.inc()
            return
        self.signatures.inc()
        rank = (-int(doc["n_chars"]), doc["id"]) if self.keep == "longest" else (doc["id"],)
        yield doc["id"], (rank, sig, doc.get("file"))


class AddSignature(beam.DoFn):
    """doc → the same doc with `sig`, its MinHash signature (None for an empty key), so that
    the signature is computed where the document is and travels instead of the key."""

    def __init__(self, hasher: MinHasher):
        self.hasher = hasher

    def process(self, doc):
        yield {**doc, "sig": self.hasher.signature(doc["key"]) if doc["key"] else None}


class _BucketStats(beam.CombineFn):
    """(count, smallest id) of a bucket; liftable, so no worker sees a bucket's members."""

    def create_accumulator(self):
        return 0, None

    def add_input(self, acc, doc_id):
        n, m = acc
        return n + 1, doc_id if m is None or doc_id < m else m

    def merge_accumulators(self, accs):
        n, m = 0, None
        for an, am in accs:
            n += an
            if am is not None and (m is None or am < m):
                m = am
        return n, m

    def extract_output(self, acc):
        return acc


def _count_bucket(item):
    _, (size, _) = item
    Metrics.distribution(NS, "bucket_size").update(size)
    _counter("buckets").inc()
    if size > 1:
        _counter("buckets_shared").inc()
    return item


@beam.typehints.with_output_types(tuple[bytes, str])
class _RouteBandKey(beam.DoFn):
    """Band keys of giant buckets become edges to the bucket's smallest id right here."""

    def process(self, item, giant):
        bkey, doc_id = item
        center = giant.get(bkey)
        if center is None:
            yield item
        elif doc_id != center:
            yield beam.pvalue.TaggedOutput("giant_edges", (doc_id, center))


def _star(item):
    """A bucket's members linked to its smallest id: (member, center) edges."""
    _, members = item
    center = min(members)
    seen = {center}
    for m in members:
        if m not in seen:
            seen.add(m)
            yield m, center


# ── verification ────────────────────────────────────────────────────────────────────────────


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
        return ({"need": requests, "value": self.values}
                | "JoinRequests" >> beam.CoGroupByKey()
                | "NeededValues" >> beam.FlatMap(_needed_value))


def _similarity(mode, fa, fb):
    if mode == "exact":
        return MinHasher.jaccard(fa, fb)
    return float(np.count_nonzero(fa == fb)) / fa.size


class _Verifier(beam.DoFn):
    """Shared by both verification steps: a value (a key, packed for the shuffle, or a
    signature) → its feature (shingle set or the signature itself), and the threshold test
    with its counters. With a `margin` (triage) a similarity within `margin` of the threshold
    decides nothing: the edge is `UNSURE`, for the exact pass."""

    def __init__(self, mode: str, threshold: float, hasher: MinHasher,
                 margin: float | None = None, first: bool = True):
        self.mode, self.threshold, self.hasher = mode, threshold, hasher
        self.margin, self.first = margin, first
        self.candidates = _counter("candidate_edges")
        self.dropped = _counter("edges_dropped_by_verification")
        self.by_signature = _counter("edges_decided_by_signature")
        self.exactly = _counter("edges_verified_exactly")

    def feature(self, value):
        if self.mode != "exact":
            return value
        return self.hasher.shingle_hashes(shuffle_bytes.unpack(value).decode("utf-8"))

    def decide(self, fa, fb) -> bool | None:
        if self.first:  # every candidate is counted once, by the first pass that sees it
            self.candidates.inc()
        similarity = _similarity(self.mode, fa, fb)
        if self.margin is not None and abs(similarity - self.threshold) <= self.margin:
            return None
        (self.exactly if self.mode == "exact" else self.by_signature).inc()
        if similarity >= self.threshold:
            return True
        self.dropped.inc()
        return False

    def outcomes(self, member, center, fa, fb):
        passed = self.decide(fa, fb)
        if passed:
            yield member, center
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


UNSURE = "unsure"


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
    """Candidate (member, center) edges → {'edges': those that pass, 'unsure': those a
    triage (`margin`) leaves undecided}. Each document's value (key or signature) is looked up
    once and sent straight to the centers that verify its edges; features (shingle sets) are
    built there, never shuffled. Edges to a giant bucket's center are verified where they are,
    against that center's feature from a side input."""

    def __init__(self, lookup, giant_centers, mode: str, threshold: float, hasher: MinHasher,
                 margin: float | None = None, first: bool = True):
        super().__init__()
        self.lookup, self.giant_centers = lookup, giant_centers
        self.verifier = (mode, threshold, hasher, margin, first)

    def expand(self, candidates):
        giant_centers = self.giant_centers
        routed = (
            candidates
            | "Requests" >> beam.FlatMap(lambda e: ((e[0], e[1]), (e[1], e[1])))
            | "CandidateValues" >> self.lookup
            | "RouteToCenter" >> beam.ParDo(_RouteToCenter(), giant=giant_centers)
            .with_outputs("giant", main="to_center")
        )
        giant_feats = (
            routed.to_center
            | "GiantCenterValues" >> beam.Filter(
                lambda kv, centers: kv[1][0] == "c" and kv[0] in centers,
                centers=giant_centers)
            | "GiantCenterFeatures" >> beam.ParDo(_GiantFeature(*self.verifier))
        )
        at_center = (
            routed.to_center
            | "ByCenter" >> beam.GroupByKey()
            | "VerifyAtCenter" >> beam.ParDo(_VerifyAtCenter(*self.verifier))
            .with_outputs(UNSURE, main="edges")
        )
        at_giant = routed.giant | "VerifyGiantEdges" >> beam.ParDo(
            _VerifyGiantEdge(*self.verifier), centers=beam.pvalue.AsDict(giant_feats)
        ).with_outputs(UNSURE, main="edges")
        return {
            "edges": (at_center.edges, at_giant.edges) | "Passed" >> beam.Flatten(),
            "unsure": (at_center[UNSURE], at_giant[UNSURE]) | "Unsure" >> beam.Flatten(),
        }


# ── connected components ───────────────────────────────────────────────────────────────────


def _both_ways(edge):
    a, b = edge
    yield a, b
    yield b, a


def _down(edge):
    a, b = edge
    return (a, b) if a > b else (b, a)


class _LargeStar(beam.DoFn):
    def __init__(self, label):
        self.changes = _counter(f"cc_changes_{label}")

    def process(self, item):
        node, neighbors = item
        out = lsh.large_star(node, neighbors)
        for _v, m in out:
            if m != node:
                self.changes.inc()
        yield from out


class _SmallStar(beam.DoFn):
    def __init__(self, label):
        self.changes = _counter(f"cc_changes_{label}")

    def process(self, item):
        node, smaller = item
        out = lsh.small_star(node, smaller)
        for v, _ in out:
            if v != node:
                self.changes.inc()
        yield from out


class _NodeStats(beam.CombineFn):
    """(smaller neighbors, has a larger neighbor) of a node; liftable."""

    def create_accumulator(self):
        return 0, False

    def add_input(self, acc, direction):
        n, up = acc
        return (n + 1, up) if direction == "down" else (n, True)

    def merge_accumulators(self, accs):
        return sum(a[0] for a in accs), any(a[1] for a in accs)

    def extract_output(self, acc):
        return acc


def _stat_inputs(edge):
    child, parent = _down(edge)
    yield child, "down"
    yield parent, "up"


def _split_residual(edge, bad):
    child, parent = edge
    if child in bad or parent in bad:
        yield beam.pvalue.TaggedOutput("residual", edge)
    else:
        yield edge


def _union_find(item):
    _, edges = item
    n = 0
    uf = lsh.UnionFind()
    for a, b in edges:
        n += 1
        uf.union(a, b)
    _counter("cc_residual_edges").inc(n)
    if n > RESIDUAL_WARN:
        _log.warning(
            "near dedup: %d edges had not converged after the CC rounds; raise --cc-rounds", n
        )
    for node in sorted(uf.parent):
        root = uf.find(node)
        if root != node:
            yield node, root


class ConnectedComponents(beam.PTransform):
    """Edges -> (node, smallest node of its component) for every node on an edge.

    `rounds` alternations of large-star and small-star (Kiveris et al. 2014), each counting the
    edges it re-pointed (`cc_changes_large_i`, `cc_changes_small_i`; both zero means converged).
    Then, always correct whether or not that happened: the nodes that are not yet a star leaf or
    centre (`cc_unconverged_nodes`) go to a side input, the edges touching them are solved by
    union-find on one key (`cc_residual_edges`, zero when converged), their (node, root) edges
    rejoin the star edges, and one more large-star turns the result into stars.
    """

    def __init__(self, rounds: int = DEFAULT_CC_ROUNDS):
        super().__init__()
        self.rounds = rounds

    def expand(self, edges):
        for i in range(1, self.rounds + 1):
            edges = (
                edges
                | f"LargeStarEdges{i}" >> beam.FlatMap(_both_ways)
                | f"LargeStarGroup{i}" >> beam.GroupByKey()
                | f"LargeStar{i}" >> beam.ParDo(_LargeStar(f"large_{i}"))
                | f"SmallStarEdges{i}" >> beam.Map(_down)
                | f"SmallStarGroup{i}" >> beam.GroupByKey()
                | f"SmallStar{i}" >> beam.ParDo(_SmallStar(f"small_{i}"))
            )
        bad = (
            edges
            | "NodeStatInputs" >> beam.FlatMap(_stat_inputs)
            | "NodeStats" >> beam.CombinePerKey(_NodeStats())
            | "Unconverged" >> beam.Filter(lambda kv: kv[1][0] > 1 or (kv[1][0] == 1 and kv[1][1]))
            | "CountUnconverged" >> beam.Map(_counting("cc_unconverged_nodes"))
            | "BadNode" >> beam.Map(lambda kv: (kv[0], True))
        )
        split = edges | "SplitResidual" >> beam.FlatMap(
            _split_residual, bad=beam.pvalue.AsDict(bad)
        ).with_outputs("residual", main="stars")
        solved = (
            split.residual
            | "ResidualOneKey" >> beam.Map(lambda e: (None, e))
            | "ResidualGroup" >> beam.GroupByKey()
            | "ResidualUnionFind" >> beam.FlatMap(_union_find)
        )
        return (
            (split.stars, solved)
            | "FinishEdges" >> beam.Flatten()
            | "FinishBothWays" >> beam.FlatMap(_both_ways)
            | "FinishGroup" >> beam.GroupByKey()
            | "FinishLargeStar" >> beam.FlatMap(lambda kv: lsh.large_star(*kv))
            | "LabelInputs" >> beam.FlatMap(lambda e: [(e[0], e[1]), (e[1], e[1])])
            | "Label" >> beam.CombinePerKey(min)
        )


# ── keep policy ─────────────────────────────────────────────────────────────────────────────


def _attach_label(item):
    node, groups = item
    labels = list(groups["label"])
    if labels:
        rank, sig, file = next(iter(groups["sig"]))
        yield labels[0], (rank, node, sig, file)


class _BestRank(beam.CombineFn):
    def create_accumulator(self):
        return None

    def add_input(self, acc, value):
        return value if acc is None or value[0] < acc[0] else acc

    def merge_accumulators(self, accs):
        best = None
        for a in accs:
            if a is not None and (best is None or a[0] < best[0]):
                best = a
        return best

    def extract_output(self, acc):
        return acc


def _duplicate_rows(item):
    _, groups = item
    _counter("components").inc()
    _, kept_id, kept_sig, _ = next(iter(groups["kept"]))
    for _, node, sig, file in groups["member"]:
        if node != kept_id:
            _counter("near_duplicates").inc()
            sim = float(np.count_nonzero(sig == kept_sig)) / sig.size
            yield {"id": node, "duplicate_of": kept_id, "kind": "near", "similarity": sim,
                   "file": file}


def _by_id_without_key(doc):
    # The dedup key is a second copy of the text; nothing after near dedup needs it, so it
    # does not ride through this last shuffle.
    return doc["id"], {k: v for k, v in doc.items() if k != "key"}


def _unless_removed(item):
    _, groups = item
    if not any(True for _ in groups["removed"]):
        yield from groups["doc"]


class NearDedup(beam.PTransform):
    """docs -> {'kept': surviving docs (without their dedup `key`), 'duplicates':
    near-duplicate rows, 'edges': the (member, center) pairs that passed verification, for
    inspection}."""

    def __init__(
        self,
        threshold: float = DEFAULT_THRESHOLD,
        num_perm: int = DEFAULT_NUM_PERM,
        shingle_size: int = DEFAULT_SHINGLE_SIZE,
        bands: int | None = None,
        rows: int | None = None,
        lsh_fn_weight: float = DEFAULT_FN_WEIGHT,
        minhash_scheme: str = DEFAULT_SCHEME,
        minhash_seed: int = DEFAULT_SEED,
        verify: str = "exact",
        triage_sigmas: float = DEFAULT_TRIAGE_SIGMAS,
        keep: str = "smallest",
        cc_rounds: int = DEFAULT_CC_ROUNDS,
        max_bucket_size: int = DEFAULT_MAX_BUCKET,
        enabled: bool = True,
        label: str | None = None,
    ):
        super().__init__(label)
        params = {k: v for k, v in locals().items() if k in _PARAMS}
        validate_near_dedup_args(argparse.Namespace(**params))
        if bands is None:
            bands, rows = lsh.optimal_params(
                threshold, num_perm, 1.0 - lsh_fn_weight, lsh_fn_weight
            )
        self.threshold, self.bands, self.rows = threshold, bands, rows
        self.lsh_fn_weight = lsh_fn_weight
        self.verify, self.keep, self.cc_rounds = verify, keep, cc_rounds
        self.triage_sigmas = triage_sigmas
        self.max_bucket_size, self.enabled = max_bucket_size, enabled
        self.hasher = MinHasher(num_perm, minhash_seed, minhash_scheme, shingle_size)

    @classmethod
    def from_options(cls, opts) -> NearDedup:
        """Build from parsed options carrying the dests of `add_near_dedup_args`."""
        return cls(
            **{k: getattr(opts, k) for k in _PARAMS}, enabled=getattr(opts, "near_dedup", True)
        )

    def settings(self) -> dict:
        return {
            "enabled": self.enabled,
            **self.hasher.settings(),
            "bands": self.bands,
            "rows": self.rows,
            "threshold": self.threshold,
            "lsh_fn_weight": self.lsh_fn_weight,
            "verify": self.verify,
            "triage_sigmas": self.triage_sigmas,
            "keep": self.keep,
            "cc_rounds": self.cc_rounds,
            "max_bucket_size": self.max_bucket_size,
        }

    def margin(self) -> float:
        """`triage_sigmas` standard errors of a signature's Jaccard estimate at the threshold
        (the fraction of equal slots is binomial: sqrt(t(1-t)/num_perm))."""
        t = self.threshold
        return self.triage_sigmas * float(np.sqrt(t * (1 - t) / self.hasher.num_perm))

    def find_in(self, lookup: beam.PTransform) -> beam.PTransform:
        """records → {'duplicates', 'edges'}, where a record is {id, n_chars, file} with
        either its `key` or its `sig` (see `AddSignature`), and `lookup` gives verification
        the dedup key of each candidate document (see `JoinLookup` for the contract)."""
        return _FindNearDuplicates(self, lookup)

    def expand(self, docs):
        if not self.enabled:
            none = docs.pipeline | "NoDuplicates" >> beam.Create([])
            return {"kept": docs, "duplicates": none, "edges": none}
        keys = docs | "KeyById" >> beam.Map(lambda d: (d["id"], d["key"]))
        found = self._find(docs, JoinLookup(keys))
        kept = (
            {
                "doc": docs | "DocById" >> beam.Map(_by_id_without_key),
                "removed": found["duplicates"]
                | "RemovedById" >> beam.Map(lambda r: (r["id"], True)),
            }
            | "JoinRemoved" >> beam.CoGroupByKey()
            | "Kept" >> beam.FlatMap(_unless_removed)
        )
        return {"kept": kept, **found}

    def _verified(self, candidates, sigs, giant, lookup):
        """Candidate (member, center) edges → the edges kept by `--verify`."""
        if self.verify == "none":
            # A pair sharing several bands comes once from each; verification routes each
            # pair once, so count (and link) the distinct pairs here too.
            return (candidates
                    | "DistinctCandidates" >> beam.Distinct()
                    | "CountCandidates" >> beam.Map(_counting("candidate_edges")))
        giant_centers = beam.pvalue.AsDict(
            giant
            | "GiantCenterIds" >> beam.Map(lambda kv: (kv[1], True))
            | "GiantCenterDistinct" >> beam.CombinePerKey(lambda flags: True)
        )
        verifier = (self.threshold, self.hasher)
        if self.verify == "exact" and self.triage_sigmas == 0:
            return (candidates | "Verify" >> _VerifyEdges(
                lookup, giant_centers, "exact", *verifier))["edges"]
        sig_lookup = JoinLookup(sigs | "SigValues" >> beam.Map(lambda kv: (kv[0], kv[1][1])))
        if self.verify == "estimate":
            return (candidates | "Verify" >> _VerifyEdges(
                sig_lookup, giant_centers, "estimate", *verifier))["edges"]
        # Signatures are small; keys are most of the bytes verification moves. Only the pairs
        # the estimate leaves in doubt have their keys read.
        triage = candidates | "Triage" >> _VerifyEdges(
            sig_lookup, giant_centers, "estimate", *verifier, margin=self.margin())
        exact = triage["unsure"] | "Verify" >> _VerifyEdges(
            lookup, giant_centers, "exact", *verifier, first=False)
        return (triage["edges"], exact["edges"]) | "VerifiedEdges" >> beam.Flatten()

    def _find(self, docs, lookup):
        p = docs.pipeline
        if not self.enabled:
            none = p | "NoDuplicates" >> beam.Create([])
            return {"duplicates": none, "edges": none}
        bands, rows = self.bands, self.rows

        sigs = docs | "Signatures" >> beam.ParDo(_Signature(self.hasher, self.keep))
        band_keys = sigs | "BandKeys" >> beam.FlatMap(
            lambda kv: ((bk, kv[0]) for bk in lsh.band_keys(kv[1][1], bands, rows))
        )
        giant = (
            band_keys
            | "BucketStats" >> beam.CombinePerKey(_BucketStats())
            | "CountBuckets" >> beam.Map(_count_bucket)
            | "GiantBuckets"
            >> beam.Filter(lambda kv, limit: kv[1][0] > limit, self.max_bucket_size)
            | "GiantCenter" >> beam.Map(lambda kv: (kv[0], kv[1][1]))
        )
        routed = band_keys | "RouteGiant" >> beam.ParDo(
            _RouteBandKey(), giant=beam.pvalue.AsDict(giant)
        ).with_outputs("giant_edges", main="normal")
        giant_edges = routed.giant_edges | "CountGiantEdges" >> beam.Map(
            _counting("giant_bucket_edges")
        )
        star_edges = (
            routed.normal | "Buckets" >> beam.GroupByKey() | "StarEdges" >> beam.FlatMap(_star)
        )
        candidates = (star_edges, giant_edges) | "Candidates" >> beam.Flatten()

        edges = self._verified(candidates, sigs, giant, lookup)
        labels = edges | "ConnectedComponents" >> ConnectedComponents(self.cc_rounds)
        members = (
            {"label": labels, "sig": sigs}
            | "JoinLabels" >> beam.CoGroupByKey()
            | "AttachLabel" >> beam.FlatMap(_attach_label)
        )
        kept_per_component = members | "KeepPolicy" >> beam.CombinePerKey(_BestRank())
        duplicates = (
            {"kept": kept_per_component, "member": members}
            | "JoinKept" >> beam.CoGroupByKey()
            | "DuplicateRows" >> beam.FlatMap(_duplicate_rows)
        )
        return {"duplicates": duplicates, "edges": edges}


class _FindNearDuplicates(beam.PTransform):
    def __init__(self, near: NearDedup, lookup: beam.PTransform):
        super().__init__()
        self.near, self.lookup = near, lookup

    def expand(self, records):
        return self.near._find(records, self.lookup)
