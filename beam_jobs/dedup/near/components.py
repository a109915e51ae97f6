"""Connected components of the verified edges, distributed: large-star / small-star rounds
(Kiveris et al., "Connected Components in MapReduce and Beyond", SoCC 2014), then a residual
union-find for whatever has not converged. Every node ends up labelled with the smallest node
of its component; no step gathers the graph on one worker unless the rounds did not converge
(counted in `cc_residual_edges`)."""

from __future__ import annotations

import logging

import apache_beam as beam
from apache_beam.transforms.combiners import TupleCombineFn

from beam_jobs.dedup import lsh
from beam_jobs.dedup.near.config import DEFAULT_CC_ROUNDS, counter

RESIDUAL_WARN = 100_000

_log = logging.getLogger(__name__)


def _both_ways(edge):
    a, b = edge
    yield a, b
    yield b, a


def _down(edge):
    a, b = edge
    return (a, b) if a > b else (b, a)


class _LargeStar(beam.DoFn):
    def __init__(self, label):
        self.changes = counter(f"cc_changes_{label}")

    def process(self, item):
        node, neighbors = item
        out = lsh.large_star(node, neighbors)
        for _v, m in out:
            if m != node:
                self.changes.inc()
        yield from out


class _SmallStar(beam.DoFn):
    """`both_ways`: the edges come out in both directions, the next round's large-star input."""

    def __init__(self, label, both_ways: bool):
        self.changes = counter(f"cc_changes_{label}")
        self.both_ways = both_ways

    def process(self, item):
        node, smaller = item
        out = lsh.small_star(node, smaller)
        for v, _ in out:
            if v != node:
                self.changes.inc()
        if self.both_ways:
            for edge in out:
                yield from _both_ways(edge)
        else:
            yield from out


def _stat_inputs(edge):
    """Per node: (smaller neighbors, has a larger neighbor), summed by a stock combine."""
    child, parent = _down(edge)
    yield child, (1, False)
    yield parent, (0, True)


def _bad_node(item):
    """(node, (smaller neighbors, has a larger one)) → (node, True) if it is neither a star
    leaf (one smaller neighbor, no larger) nor a centre (no smaller neighbor)."""
    node, (smaller, larger) = item
    if smaller > 1 or (smaller == 1 and larger):
        counter("cc_unconverged_nodes").inc()
        yield node, True


def _labels(item):
    """A node and its neighbors after the finishing large-star → (node, label) candidates."""
    for v, m in lsh.large_star(*item):
        yield v, m
        yield m, m


def _split_residual(edge, bad):
    """An edge touching an unconverged node → `residual`; the others, both ways, to the
    finishing large-star."""
    child, parent = edge
    if child in bad or parent in bad:
        yield beam.pvalue.TaggedOutput("residual", edge)
    else:
        yield from _both_ways(edge)


def _union_find(item):
    """The residual edges → (node, root) of each of their nodes but the roots, both ways."""
    _, edges = item
    n = 0
    uf = lsh.UnionFind()
    for a, b in edges:
        n += 1
        uf.union(a, b)
    counter("cc_residual_edges").inc(n)
    if n > RESIDUAL_WARN:
        _log.warning(
            "near dedup: %d edges had not converged after the CC rounds; raise --cc-rounds", n
        )
    for node in sorted(uf.parent):
        root = uf.find(node)
        if root != node:
            yield node, root
            yield root, node


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
        edges = edges | "LargeStarEdges1" >> beam.FlatMap(_both_ways)
        for i in range(1, self.rounds + 1):
            # A large-star's output (v, m) has v > m already: the small-star groups it as is.
            edges = (
                edges
                | f"LargeStarGroup{i}" >> beam.GroupByKey()
                | f"LargeStar{i}" >> beam.ParDo(_LargeStar(f"large_{i}"))
                | f"SmallStarGroup{i}" >> beam.GroupByKey()
                | f"SmallStar{i}" >> beam.ParDo(_SmallStar(f"small_{i}", i < self.rounds))
            )
        bad = (
            edges
            | "NodeStatInputs" >> beam.FlatMap(_stat_inputs)
            | "NodeStats" >> beam.CombinePerKey(TupleCombineFn(sum, any))
            | "Unconverged" >> beam.FlatMap(_bad_node)
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
            | "FinishGroup" >> beam.GroupByKey()
            | "FinishLargeStar" >> beam.FlatMap(_labels)
            | "Label" >> beam.CombinePerKey(min)
        )
