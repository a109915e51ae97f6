"""Prototype of the `twin` keep rule (issue 17) in plain Python over a real run's verified
edges, measured against today's `components` rule.

    python benchmarks/keep_rule_twin.py --run OUTPUT_DIR --input 'GLOB'   # a finished run
    python benchmarks/keep_rule_twin.py --quality                          # ja_python_docs

The rule: inside each connected component of the verified edges, visit the members in keep
order (`smallest`: id; `longest`: most characters, then id); a member that no kept member is
linked to is kept, and every member it is linked to and that is not kept yet is removed with
it as `duplicate_of` (the best-ranked kept neighbour, since that one is visited first). So the
kept set is the lexicographically first maximal independent set of the component in keep
order: every removal has a verified edge (J >= threshold) to a kept document, no two kept
documents share a verified edge, and the result depends only on the edges and the order.

`--run`: the run's near-dedup input (its kept documents and near removals, keys rebuilt as
`near_dedup_twins` does) goes through `NearDedup` again on the in-process runner for its
verified edges; its duplicates must equal the run's. Reported for both rules: removals, kept
documents, and the share of removals whose kept twin has exact J >= 0.8.
`--quality`: recall of the exact ground-truth pairs of `bench_near_dedup_quality.py` under
both rules, as that benchmark defines it (both documents end with the same representative)
and as "not both kept" (no true pair survives twice).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from beam_jobs.dedup import lsh  # noqa: E402
from benchmarks import bench_near_dedup_quality as quality  # noqa: E402
from benchmarks.near_dedup_twins import TwinMeter, print_stats, read_keys, read_run  # noqa: E402


def twin_keep(edges: Iterable[tuple[Hashable, Hashable]], rank: Callable) -> dict:
    """Verified edges -> {removed: kept twin}. Per component (the unit a worker gets), members
    in `rank` order; see the module docstring."""
    adj = defaultdict(set)
    for a, b in edges:
        if a != b:
            adj[a].add(b)
            adj[b].add(a)
    uf = lsh.UnionFind()
    for a, nbrs in adj.items():
        for b in nbrs:
            uf.union(a, b)
    comps = defaultdict(list)
    for node in adj:
        comps[uf.find(node)].append(node)
    twin = {}
    for members in comps.values():
        kept = set()
        for node in sorted(members, key=rank):
            if node in twin:
                continue
            kept.add(node)
            for m in adj[node]:
                if m not in kept and m not in twin:
                    twin[m] = node
    return twin


def components_keep(edges, rank) -> dict:
    """Today's rule on the same edges: one kept document per component, the best-ranked."""
    comps = defaultdict(list)
    for node, root in lsh.components(edges).items():
        comps[root].append(node)
    out = {}
    for members in comps.values():
        best = min(members, key=rank)
        out.update({m: best for m in members if m != best})
    return out


def run_docs(output: Path, pattern: str) -> tuple[list[dict], dict, set]:
    """The documents near dedup saw in a run, as NearDedup's input."""
    near, kept, config = read_run(output)
    keys = read_keys(pattern, kept | set(near), config)
    docs = [
        {"id": d, "key": k, "text": "", "n_chars": len(k), "source": ""}
        for d, k in sorted(keys.items())
    ]
    return docs, near, kept


def measure_run(output: Path, pattern: str, t: float) -> dict:
    docs, near, kept = run_docs(output, pattern)
    edges, rep, counters, secs = quality.beam_system(docs)
    replay = {d: r for d, r in rep.items() if d != r}
    assert replay == near, f"NearDedup again: {len(replay)} removals, the run {len(near)}"
    keys = {d["id"]: d["key"] for d in docs}
    rank = lambda d: d  # noqa: E731  (--keep smallest)
    twin = twin_keep(edges, rank)
    assert components_keep(edges, rank) == near
    out = {"verified_edges": len(edges), "near_dedup_seconds": round(secs, 1)}
    meter = TwinMeter(keys)
    for rule, dup_of in (("components", near), ("twin", twin)):
        kept_rule = set(keys) - set(dup_of)
        stats = meter.stats(dup_of, kept_rule, t)
        print_stats(f"{output} --near-keep-rule {rule}", stats, t)
        out[rule] = {k: v for k, v in stats.items() if k != "rows"}
    print(
        f"twin keeps {len(near) - len(twin)} more documents than components "
        f"({len(near)} -> {len(twin)} near removals)"
    )
    return out


def measure_quality(path: Path, t: float) -> dict:
    docs = quality.load(path)
    idx = {d["id"]: i for i, d in enumerate(docs)}
    sets = quality.token_sets(docs, 5)
    truth = quality.all_pairs(sets, t)
    true_pairs = [(docs[i]["id"], docs[j]["id"]) for i, j in truth]
    edges, rep, _, _ = quality.beam_system(docs)
    rank = lambda d: d  # noqa: E731
    rules = {"components": {d: r for d, r in rep.items() if d != r}, "twin": twin_keep(edges, rank)}
    out = {"true_pairs": len(true_pairs)}
    for rule, dup_of in rules.items():
        rep_rule = {d["id"]: dup_of.get(d["id"], d["id"]) for d in docs}
        row = quality.score(
            f"NearDedup --near-keep-rule {rule}", true_pairs, edges, rep_rule, sets, t, idx
        )
        removed = set(dup_of)
        row["recall_not_both_kept"] = sum(
            1 for a, b in true_pairs if a in removed or b in removed
        ) / len(true_pairs)
        print(json.dumps(row), flush=True)
        out[rule] = row
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, action="append", default=[])
    ap.add_argument("--input", action="append", default=[], help="one glob per --run")
    ap.add_argument("--quality", action="store_true")
    ap.add_argument("--corpus", type=Path, default=quality.CORPORA / "ja_python_docs.jsonl.gz")
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    result = {}
    for output, pattern in zip(a.run, a.input):
        result[str(output)] = measure_run(output, pattern, a.threshold)
    if a.quality:
        result["quality"] = measure_quality(a.corpus, a.threshold)
    if a.json:
        a.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
