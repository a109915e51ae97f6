"""Which documents of a near-duplicate component survive (`--near-keep-rule`).

`twin` (the default): every removed document has a verified edge to a kept one, its twin. In
each component, documents are visited best first by `--near-keep` (the smallest id, or the
longest text with ties by id); one that no kept document has claimed yet is kept and claims
its verified neighbours, which are removed with it as their `duplicate_of` and the verified
similarity of that edge. This is a greedy dominating set of the verified edges: a chain
A~B~C whose ends are far apart keeps A and C and removes B, where connected components would
keep A alone and remove C although nothing kept resembles it. It is deterministic: the order
is the rank, and ranks are unique.

`components`: one document per component, the best-ranked, and every other member removed
pointing at it (similarity: the signature estimate), the rule of union-find dedup tools. It
removes the most.

A component is grouped on one worker with its edges; one whose edges exceed
`max_component_edges` (never seen on the shared corpora, whose largest has a few hundred) is
handled by the `components` rule instead, so a worker never holds more than that (counted as
`components_over_edge_limit`).
"""

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


def _to_component(item):
    """(node, {'label', 'sig', 'edge'}) → (component label, ("m", (rank, node, sig, file)))
    and (label, ("e", (a, b, similarity))) for the edges whose first end is the node."""
    node, groups = item
    labels = list(groups["label"])
    if labels:
        rank, sig, file = next(iter(groups["sig"]))
        yield labels[0], ("m", (rank, node, sig, file))
        for edge in groups["edge"]:
            yield labels[0], ("e", edge)


def _best_rank_rows(members) -> list[Duplicate]:
    """The `components` rule for one grouped component (over the twin rule's edge limit)."""
    members = sorted(members, key=lambda m: m[0])
    _, kept_id, kept_sig, _ = members[0]
    return [
        Duplicate(node, kept_id, "near", _estimate(sig, kept_sig), file)
        for _, node, sig, file in members[1:]
    ]


def _estimate(a, b) -> float | None:
    return None if a is None or b is None else estimate_jaccard(a, b)


def twin_rows(members, edges) -> list[Duplicate]:
    """The `twin` rule for one component: `members` are (rank, id, sig, file), `edges`
    (a, b, verified similarity or None)."""
    neighbours: dict[str, list] = {}
    for a, b, similarity in edges:
        neighbours.setdefault(a, []).append((b, similarity))
        neighbours.setdefault(b, []).append((a, similarity))
    members = sorted(members, key=lambda m: m[0])
    sigs = {node: (sig, file) for _, node, sig, file in members}
    claimed: set = set()
    rows = []
    for _, node, sig, _ in members:
        if node in claimed:
            continue
        claimed.add(node)  # kept: no kept document has claimed it
        for other, similarity in sorted(neighbours.get(node, ()), key=lambda e: e[0]):
            if other not in claimed:
                claimed.add(other)
                other_sig, other_file = sigs[other]
                if similarity is None:  # --near-verify none: the estimate is all there is
                    similarity = _estimate(other_sig, sig)
                rows.append(Duplicate(other, node, "near", similarity, other_file))
    return rows


class _KeepTwins(beam.DoFn):
    def __init__(self, max_edges: int):
        self.max_edges = max_edges

    def setup(self):
        self.components = counter("components")
        self.removed = counter("near_duplicates")
        self.over_limit = counter("components_over_edge_limit")

    def process(self, item):
        _, entries = item
        members, edges = [], []
        for kind, value in entries:
            (members if kind == "m" else edges).append(value)
        if not members:
            return
        self.components.inc()
        if len(edges) > self.max_edges:
            self.over_limit.inc()
            rows = _best_rank_rows(members)
        else:
            rows = twin_rows(members, edges)
        self.removed.inc(len(rows))
        yield from rows


def _components_rows(item):
    """The `components` rule, streamed: the best rank of a component arrives from a
    liftable combine, so its members are never held together."""
    _, groups = item
    counter("components").inc()
    _, kept_id, kept_sig, _ = next(iter(groups["kept"]))
    for _, node, sig, file in groups["member"]:
        if node != kept_id:
            counter("near_duplicates").inc()
            yield Duplicate(node, kept_id, "near", estimate_jaccard(sig, kept_sig), file)


class KeepPerComponent(beam.PTransform):
    """(node, component label) pairs, the verified (a, b, similarity) edges and the
    (id, (rank, sig, file)) of `Candidates` → `Duplicate` rows by `rule` (module docstring).
    `need_sigs`: the edges carry no similarity (nothing verified), so the twin rule estimates
    it from the signatures; otherwise they stay behind, and a component is small to group."""

    def __init__(
        self, sigs, edges, rule: str = "twin", max_edges: int = 2_000_000, need_sigs: bool = False
    ):
        super().__init__()
        self.sigs, self.edges, self.rule = sigs, edges, rule
        self.max_edges, self.need_sigs = max_edges, need_sigs

    def expand(self, labels):
        sigs = self.sigs
        if self.rule == "twin" and not self.need_sigs:
            sigs = sigs | "DropSigs" >> beam.MapTuple(lambda i, v: (i, (v[0], None, v[2])))
        if self.rule == "components":
            members = (
                {"label": labels, "sig": sigs}
                | "JoinLabels" >> beam.CoGroupByKey()
                | "AttachLabel" >> beam.FlatMap(_attach_label)
            )
            # Ranks are unique (they end with the id), so the minimum tuple is the best rank
            # and never compares signatures.
            kept = members | "KeepPolicy" >> beam.CombinePerKey(min)
            return (
                {"kept": kept, "member": members}
                | "JoinKept" >> beam.CoGroupByKey()
                | "DuplicateRows" >> beam.FlatMap(_components_rows)
            )
        # One join brings each node its label, rank and file, and its edges: both go to the
        # component's label, where the component is grouped once.
        edges = self.edges | "ByFirst" >> beam.Map(lambda e: (e[0], e))
        return (
            {"label": labels, "sig": sigs, "edge": edges}
            | "JoinLabels" >> beam.CoGroupByKey()
            | "ToComponent" >> beam.FlatMap(_to_component)
            | "ByComponent" >> beam.GroupByKey()
            | "KeepTwins" >> beam.ParDo(_KeepTwins(self.max_edges))
        )
