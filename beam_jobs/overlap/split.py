"""Containment edges, the split by overlap component, and the leakage report, distributed.

    DocPrint ─ by fingerprint (groups over `max_group` skipped: boilerplate) ─ pairs sharing
             ─ shared counts per pair ─ edges where A in B or B in A ≥ threshold
             ─ ConnectedComponents (near dedup's) ─ split of each component
    DocPrint + split ─ by fingerprint: validation fingerprints that occur in train ─ report

A component's split is `assign_split` of its smallest id, so a document with no edge keeps the
split of its own id, as without this stage. A component holding more characters than
`max_val_component` x val_fraction x all characters goes to train whatever its hash: in val
it would be most of the validation set (counted as `components_forced_train`).
"""

from __future__ import annotations

import typing
from collections import Counter

import apache_beam as beam
from apache_beam.transforms.combiners import TupleCombineFn
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from beam_jobs.dedup.near.components import ConnectedComponents
from beam_jobs.overlap import report
from beam_jobs.overlap.config import OverlapConfig
from beam_jobs.overlap.fingerprints import as_keys, contained_either_way
from beam_jobs.overlap.prints import NS, DocPrint
from beam_jobs.split.assign import assign_split


def counter(name: str):
    return beam.metrics.Metrics.counter(NS, name)


def _by_print(doc: DocPrint):
    prints = as_keys(doc.prints)
    member = (doc.id, len(prints))
    for h in prints:
        yield h, member


class _Pairs(beam.DoFn):
    """(fingerprint, members) → ((a, |a|), (b, |b|)), n: the pairs of members and how many
    fingerprints of the bundle they share, unless a group is larger than `max_group` (held up
    to that many, never more). Counted in the bundle first (at most `FLUSH` pairs held):
    documents that share a passage share many fingerprints, and one output per pair and
    fingerprint was most of the stage's time (1.6 M outputs on corpora/ja)."""

    FLUSH = 200_000

    def __init__(self, max_group: int):
        self.max_group = max_group

    def setup(self):
        self.giant = counter("giant_groups")
        self.shared = counter("shared_fingerprints")
        self.pairs = counter("pairs")  # grows with the square of max_group

    def start_bundle(self):
        self.counts = Counter()

    def process(self, item):
        _, members = item
        held = []
        for member in members:
            held.append(member)
            if len(held) > self.max_group:
                self.giant.inc()
                return
        if len(held) < 2:
            return
        self.shared.inc()
        self.pairs.inc(len(held) * (len(held) - 1) // 2)
        held.sort()
        counts = self.counts
        for i, a in enumerate(held):
            for b in held[i + 1 :]:
                counts[a, b] += 1
        if len(counts) > self.FLUSH:
            yield from counts.items()
            self.counts = Counter()

    def finish_bundle(self):
        window = GlobalWindow()
        for pair in self.counts.items():
            yield WindowedValue(pair, window.max_timestamp(), [window])
        self.counts = Counter()


def _edge(item, threshold: float):
    ((a, size_a), (b, size_b)), shared = item
    if contained_either_way(shared, size_a, size_b, threshold):
        counter("containment_edges").inc()
        yield a, b


class ContainmentEdges(beam.PTransform):
    """`DocPrint`s → (a, b) edges between documents one of which contains the other."""

    def __init__(self, config: OverlapConfig):
        super().__init__()
        self.config = config

    def expand(self, docs):
        return (
            docs
            | "ByPrint" >> beam.FlatMap(_by_print)
            | "GroupPrint" >> beam.GroupByKey()
            | "Pairs" >> beam.ParDo(_Pairs(self.config.max_group))
            | "SharedCounts" >> beam.CombinePerKey(sum)
            | "Edges" >> beam.FlatMap(_edge, self.config.threshold)
        )


def _member(item):
    doc_id, groups = item
    roots, chars = list(groups["root"]), list(groups["chars"])
    if roots and chars:
        yield roots[0], (doc_id, chars[0])


def _component_split(item, total_chars: int, val_fraction: float, seed: str, limit: float):
    root, groups = item
    size = next(iter(groups["size"]))
    counter("components").inc()
    if size > limit * val_fraction * total_chars:
        counter("components_forced_train").inc()
        split = "train"
    else:
        split = assign_split(root, val_fraction, seed)
    for doc_id, _ in groups["member"]:
        if split != assign_split(doc_id, val_fraction, seed):
            counter(f"moved_to_{split}").inc()
            yield doc_id, split


class ComponentSplits(beam.PTransform):
    """`DocPrint`s → (id, split) of the documents whose overlap component moves them to the
    other split than their own id's hash would (all others keep that one)."""

    def __init__(self, config: OverlapConfig, val_fraction: float, seed: str):
        super().__init__()
        self.config, self.val_fraction, self.seed = config, val_fraction, seed

    def expand(self, docs):
        labels = (
            docs
            | "ContainmentEdges" >> ContainmentEdges(self.config)
            | "Components" >> ConnectedComponents(self.config.cc_rounds)
        )
        chars = docs | "Chars" >> beam.Map(lambda d: (d.id, d.n_chars))
        members = (
            {"root": labels, "chars": chars}
            | "JoinRoot" >> beam.CoGroupByKey()
            | "Member" >> beam.FlatMap(_member)
        )
        sizes = (
            members
            | "SizeInputs" >> beam.MapTuple(lambda root, m: (root, m[1]))
            | ("ComponentChars" >> beam.CombinePerKey(sum))
        )
        total = chars | "AllChars" >> beam.Values() | "TotalChars" >> beam.CombineGlobally(sum)
        return (
            {"member": members, "size": sizes}
            | "JoinSize" >> beam.CoGroupByKey()
            | "ComponentSplit"
            >> beam.FlatMap(
                _component_split,
                total_chars=beam.pvalue.AsSingleton(total),
                val_fraction=self.val_fraction,
                seed=self.seed,
                limit=self.config.max_val_component,
            )
        )


def _with_split(item, val_fraction: float, seed: str):
    doc_id, groups = item
    moved = list(groups["moved"])
    for doc in groups["doc"]:
        yield (moved[0] if moved else assign_split(doc_id, val_fraction, seed)), doc


def decide_splits(docs, moved, val_fraction: float, seed: str):
    """`DocPrint`s and the moved (id, split) → (split, DocPrint) of every document."""
    if moved is None:
        return docs | "OwnSplit" >> beam.Map(lambda d: (assign_split(d.id, val_fraction, seed), d))
    return (
        {"doc": docs | "DocById" >> beam.Map(lambda d: (d.id, d)), "moved": moved}
        | "JoinMoved" >> beam.CoGroupByKey()
        | "WithSplit" >> beam.FlatMap(_with_split, val_fraction, seed)
    )


@beam.typehints.with_output_types(tuple[int, typing.Any])
class _ReportInputs(beam.DoFn):
    """(split, DocPrint) → (fingerprint, None) for train, (fingerprint, id) for val; and for
    each validation document (id, (0, fingerprints, chars)) on `val`."""

    def process(self, item):
        split, doc = item
        prints = as_keys(doc.prints)
        if split == "train":
            for h in prints:
                yield h, None
        else:
            for h in prints:
                yield h, doc.id
            yield beam.pvalue.TaggedOutput("val", (doc.id, (0, len(prints), doc.n_chars)))


def _hits(item):
    _, owners = item
    in_train, val = False, []
    for owner in owners:
        if owner is None:
            in_train = True
        else:
            val.append(owner)
    if in_train:
        for doc_id in val:
            yield doc_id, (1, 0, 0)


class _ReportFn(beam.CombineFn):
    def create_accumulator(self):
        return report.new()

    def add_input(self, acc, item):
        doc_id, (hits, windows, chars) = item
        return report.add(acc, doc_id, hits, windows, chars)

    def merge_accumulators(self, accs):
        return report.merge(accs)

    def extract_output(self, acc):
        return acc


class LeakageReport(beam.PTransform):
    """(split, DocPrint) → one dict: the leakage report of the validation split."""

    def __init__(self, settings: dict):
        super().__init__()
        self.settings = settings

    def expand(self, docs):
        settings = self.settings
        inputs = docs | "ReportInputs" >> beam.ParDo(_ReportInputs()).with_outputs(
            "val", main="prints"
        )
        hits = inputs.prints | "GroupPrint" >> beam.GroupByKey() | "Hits" >> beam.FlatMap(_hits)
        return (
            (hits, inputs.val)
            | "PerDoc" >> beam.Flatten()
            | "SumPerDoc" >> beam.CombinePerKey(TupleCombineFn(sum, sum, sum))
            | "Summary" >> beam.CombineGlobally(_ReportFn())
            | "Finish" >> beam.Map(report.finish, settings)
        )
