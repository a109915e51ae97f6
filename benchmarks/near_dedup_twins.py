"""Does every near-duplicate removal have a kept twin? Exact Jaccard of each removed document to
the document its `duplicate_of` names and to its closest kept document, from a finished run.

    python benchmarks/near_dedup_twins.py OUTPUT_DIR 'INPUT_GLOB' [--threshold 0.8] [--json F]

Keys are rebuilt from the input as the pipeline builds them (the run's normalization from its
manifest, then `dedup_key`), for the documents near dedup saw: the kept ones and the near
removals. Similarity is exact character-5-gram Jaccard (`benchmarks/exact_jaccard.py`); the
closest kept document is exact at or above `--floor` (below it: "none >= floor").

Chain length: hops from the removed document to its `duplicate_of` over pairs with exact
J >= threshold inside their component (the documents sharing that `duplicate_of`); 1 means
the named document is a twin.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import statistics
import sys
from collections import Counter, defaultdict, deque
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from beam_jobs.text.normalize import NormalizeConfig, dedup_key, normalize_text  # noqa: E402
from benchmarks.exact_jaccard import NearestIndex, ShingleSets  # noqa: E402


def read_run(output: Path) -> tuple[dict[str, str], set[str], NormalizeConfig]:
    """(near removal id -> duplicate_of, kept ids, normalization) of a finished run."""
    import pyarrow.parquet as pq

    dups = pq.read_table(sorted(glob.glob(str(output / "duplicates/*.parquet")))).to_pylist()
    near = {r["id"]: r["duplicate_of"] for r in dups if r["kind"] == "near"}
    shards = sorted(
        glob.glob(str(output / "train/*.parquet")) + glob.glob(str(output / "val/*.parquet"))
    )
    kept = set(pq.read_table(shards, columns=["id"]).column("id").to_pylist())
    manifest = json.loads((output / "manifest.json").read_text())
    norm = manifest["normalization"]
    config = NormalizeConfig(
        form=norm["form"],
        lowercase=norm["lowercase"],
        punct_to_space=norm["punct_to_space"],
        whitespace=norm["whitespace"],
    )
    return near, kept, config


def read_keys(pattern: str, wanted: set[str], config: NormalizeConfig) -> dict[str, str]:
    keys = {}
    for f in sorted(glob.glob(pattern)):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            for r in map(json.loads, fh):
                if r["id"] in wanted:
                    keys[r["id"]] = dedup_key(normalize_text(r["text"], config))
    return keys


def chain_lengths(sets: ShingleSets, index: dict, dup_of: dict, t: float) -> dict[str, int]:
    """Hops from each removal to its duplicate_of over exact >= t pairs within its component
    (0 when unreachable that way)."""
    members = defaultdict(list)
    for d, k in dup_of.items():
        members[k].append(d)
    hops = {}
    for kept, group in members.items():
        nodes = [kept, *sorted(group)]
        ix = np.array([index[n] for n in nodes])
        a, b = np.triu_indices(len(nodes), 1)
        sims = sets.pairs_jaccard(np.stack([ix[a], ix[b]], 1))
        adj = defaultdict(list)
        for x, y in zip(a[sims >= t], b[sims >= t]):
            adj[x].append(y)
            adj[y].append(x)
        dist, queue = {0: 0}, deque([0])
        while queue:
            x = queue.popleft()
            for y in adj[x]:
                if y not in dist:
                    dist[y] = dist[x] + 1
                    queue.append(y)
        for i, n in enumerate(nodes[1:], 1):
            hops[n] = dist.get(i, 0)
    return hops


class TwinMeter:
    """Shingle sets of `keys` (id -> dedup key), built once, for any number of keep rules."""

    def __init__(self, keys: dict[str, str]):
        self.ids = sorted(keys)
        self.index = {d: i for i, d in enumerate(self.ids)}
        self.sets = ShingleSets([keys[d] for d in self.ids], 5)

    def stats(
        self, dup_of: dict[str, str], kept: set[str], t: float = 0.8, floor: float = 0.5
    ) -> dict:
        """Per removal: J to duplicate_of, J to the closest kept document; summaries."""
        index, sets = self.index, self.sets
        near = NearestIndex(sets, [index[d] for d in kept if d in index], floor)
        pairs = np.array([[index[d], index[k]] for d, k in dup_of.items()]).reshape(-1, 2)
        named = {d: float(v) for d, v in zip(dup_of, sets.pairs_jaccard(pairs))}
        closest = {d: near.nearest(index[d])[0] for d in dup_of}
        hops = chain_lengths(sets, index, dup_of, t)
        return summarize(dup_of, kept, named, closest, hops, t)


def summarize(dup_of, kept, named, closest, hops, t) -> dict:
    orphans = sorted(d for d in dup_of if (closest[d] or 0) < t)
    by_chain = defaultdict(Counter)
    for d in dup_of:
        row = by_chain[int(hops[d])]
        row["removed"] += 1
        row["twin"] += int((closest[d] or 0) >= t)
        row["named_twin"] += int(named[d] >= t)
    orphan_sims = [closest[d] for d in orphans if closest[d] is not None]
    source = Counter(":".join(d.split(":")[:2]) for d in orphans)
    return {
        "near_removed": len(dup_of),
        "kept": len(kept),
        "named_twin": sum(1 for v in named.values() if v >= t),
        "kept_twin": len(dup_of) - len(orphans),
        "no_kept_twin": len(orphans),
        "no_kept_twin_share": len(orphans) / max(1, len(dup_of)),
        "orphan_closest_kept": {
            "below_floor": len(orphans) - len(orphan_sims),
            "min": min(orphan_sims, default=None),
            "max": max(orphan_sims, default=None),
            "median": statistics.median(orphan_sims) if orphan_sims else None,
        },
        "orphans_by_source": dict(source.most_common()),
        "by_chain_length": {h: dict(c) for h, c in sorted(by_chain.items())},
        "rows": {
            d: {
                "duplicate_of": dup_of[d],
                "named": round(named[d], 4),
                "closest_kept": closest[d],
                "hops": int(hops[d]),
            }
            for d in sorted(dup_of)
        },
    }


def print_stats(label: str, s: dict, t: float) -> None:
    print(
        f"{label}: {s['near_removed']} near removals, {s['kept']} kept; "
        f"duplicate_of is a twin (J >= {t}) for {s['named_twin']}, some kept document for "
        f"{s['kept_twin']}; no kept twin: {s['no_kept_twin']} "
        f"({s['no_kept_twin_share']:.1%})"
    )
    o = s["orphan_closest_kept"]
    if s["no_kept_twin"]:
        print(
            f"  their closest kept: min {o['min']}, median {o['median']}, max {o['max']}, "
            f"{o['below_floor']} below the floor; by source {s['orphans_by_source']}"
        )
    print(f"  {'hops':>4} {'removed':>8} {'kept twin':>9} {'named twin':>10}")
    for h, c in s["by_chain_length"].items():
        print(f"  {h:>4} {c['removed']:8d} {c.get('twin', 0):9d} {c.get('named_twin', 0):10d}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("output", type=Path)
    ap.add_argument("input")
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--floor", type=float, default=0.5)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    near, kept, config = read_run(a.output)
    keys = read_keys(a.input, kept | set(near), config)
    stats = TwinMeter(keys).stats(near, kept, a.threshold, a.floor)
    print_stats(str(a.output), stats, a.threshold)
    if a.json:
        a.json.write_text(json.dumps(stats, indent=1))


if __name__ == "__main__":
    main()
