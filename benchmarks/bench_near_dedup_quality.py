"""Near-dedup quality against exact shingle Jaccard, next to datasketch's MinHashLSH; and the
whole-corpus run on the FnApiRunner with time per stage and peak memory.

    python benchmarks/bench_near_dedup_quality.py                      # quality, ja_python_docs
    python benchmarks/bench_near_dedup_quality.py --shingle-sizes 3 4 5 7 --quality-only
    python benchmarks/bench_near_dedup_quality.py --whole-corpus       # adds the 2-worker run

Ground truth: every pair of documents (after exact dedup on the key) whose character-shingle
sets have Jaccard >= threshold, found exactly with a prefix filter (Bayardo et al., "Scaling up
all pairs similarity search", 2007: with tokens in increasing global frequency, two sets with
Jaccard >= t share a token among the first |x| - ceil(t|x|) + 1 of each) and verified by set
intersection; no sampling, no hashing.

Reported per system: recall of true pairs (both documents end up in the same component),
precision of the merged pairs (pairs linked directly: our verified edges, datasketch's query
results), precision of the removals (removed document vs the document kept in its place), and
precision over all pairs inside components.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from beam_jobs.dedup import lsh  # noqa: E402
from beam_jobs.dedup.minhash import MinHasher  # noqa: E402
from beam_jobs.dedup.near.config import DEFAULT_TRIAGE_SIGMAS  # noqa: E402
from beam_jobs.dedup.shingles import DEFAULT_SHINGLE_SIZE, shingle_set  # noqa: E402
from beam_jobs.text.normalize import dedup_key  # noqa: E402

CORPORA = ROOT.parent / "shared" / "corpora" / "ja"


def load(path: Path) -> list[dict]:
    """Docs with a key, exact duplicates (same key) removed keeping the smallest id."""
    docs = {}
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            key = dedup_key(r["text"])
            d = {
                "id": r["id"],
                "text": r["text"],
                "key": key,
                "n_chars": len(r["text"]),
                "source": r.get("source", path.name),
            }
            if key not in docs or d["id"] < docs[key]["id"]:
                docs[key] = d
    return sorted(docs.values(), key=lambda d: d["id"])


def token_sets(docs: list[dict], n: int) -> list[np.ndarray]:
    """Each doc's shingle set as sorted int ids, ids numbered by increasing global frequency."""
    sets = [shingle_set(d["key"], n) for d in docs]
    df = Counter(s for st in sets for s in st)
    order = {s: i for i, (s, _) in enumerate(sorted(df.items(), key=lambda kv: (kv[1], kv[0])))}
    return [np.array(sorted(order[s] for s in st), dtype=np.int64) for st in sets]


def exact_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    if a.size == 0 and b.size == 0:
        return 1.0
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter)


def all_pairs(sets: list[np.ndarray], t: float) -> dict[tuple[int, int], float]:
    """Every pair (i < j) with exact Jaccard >= t: prefix filter, size filter, exact check."""
    index = defaultdict(list)
    found = {}
    for j in sorted(range(len(sets)), key=lambda k: sets[k].size):
        x = sets[j]
        if x.size == 0:
            continue
        prefix = x.size - math.ceil(t * x.size - 1e-9) + 1
        cands = set()
        for tok in x[:prefix].tolist():
            for i in index[tok]:
                if sets[i].size >= t * x.size:
                    cands.add(i)
            index[tok].append(j)
        for i in cands:
            sim = exact_jaccard(sets[i], x)
            if sim >= t:
                found[(min(i, j), max(i, j))] = sim
    return found


def score(name, true_pairs, linked, rep, sets, t, idx):
    """Recall/precision of one system. linked: directly merged pairs; rep: id -> kept id."""
    comp = defaultdict(list)
    for node, r in rep.items():
        comp[r].append(node)
    recalled = sum(1 for i, j in true_pairs if rep.get(i, i) == rep.get(j, j))
    # what dedup is for: of each true pair, at least one document removed (the twin rule can
    # keep several documents of one component, so "same representative" undercounts it)
    not_both = sum(1 for i, j in true_pairs if rep.get(i, i) != i or rep.get(j, j) != j)
    linked_ok = sum(1 for a, b in linked if exact_jaccard(sets[idx[a]], sets[idx[b]]) >= t)
    removed = [(n, r) for n, r in rep.items() if n != r]
    removed_ok = sum(1 for n, r in removed if exact_jaccard(sets[idx[n]], sets[idx[r]]) >= t)
    comp_pairs = comp_ok = 0
    for members in comp.values():
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                comp_pairs += 1
                comp_ok += exact_jaccard(sets[idx[members[x]]], sets[idx[members[y]]]) >= t
    ratio = lambda a, b: a / b if b else 1.0  # noqa: E731
    return {
        "system": name,
        "recall": ratio(recalled, len(true_pairs)),
        "recall_not_both_kept": ratio(not_both, len(true_pairs)),
        "precision_merged_pairs": ratio(linked_ok, len(linked)),
        "merged_pairs": len(linked),
        "precision_removed": ratio(removed_ok, len(removed)),
        "removed": len(removed),
        "precision_component_pairs": ratio(comp_ok, comp_pairs),
        "component_pairs": comp_pairs,
    }


def datasketch_system(docs, hasher, threshold, params=None):
    """MinHashLSH over the same signatures; candidates from query(); union-find components."""
    from datasketch import MinHash, MinHashLSH

    index = MinHashLSH(threshold=threshold, num_perm=hasher.num_perm, params=params)
    sketches = {}
    for d in docs:
        if d["key"]:
            sig = hasher.signature(d["key"])
            sketches[d["id"]] = MinHash(
                hasher.num_perm, seed=hasher.seed, scheme=hasher.scheme, hashvalues=sig
            )
            index.insert(d["id"], sketches[d["id"]])
    linked = {(min(i, j), max(i, j)) for i, m in sketches.items() for j in index.query(m) if i != j}
    return linked, lsh.components(linked, nodes=[d["id"] for d in docs]), (index.b, index.r)


def near_dedup_records(docs, tmp: str, config):
    """Document dicts → the production path to near dedup: `Document`s, signatures, spill
    files under `tmp` (from which verification reads the keys), `DedupRecord`s."""
    import apache_beam as beam

    from beam_jobs.dedup.near import AddSignature
    from beam_jobs.io.spill import SpillDocuments
    from beam_jobs.records import Document

    return (
        docs
        | "ToDocument"
        >> beam.Map(
            lambda d: Document(
                d["id"], d["text"], d["key"], d["n_chars"], d["n_chars"], d["source"], "f", 0
            )
        )
        | "Sign" >> beam.ParDo(AddSignature(config.hasher()))
        | "Spill" >> SpillDocuments(tmp, "spill", 4)
    )["records"]


def beam_system(docs, runner_args=(), **kwargs):
    """NearDedup on the FnApiRunner: (verified edges, id -> kept id, counters, seconds)."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from beam_jobs.dedup.near import NearDedup, NearDedupConfig

    with tempfile.TemporaryDirectory() as tmp:
        # a file source: beam.Create of 25 MB of documents alone takes about a minute
        with open(f"{tmp}/docs.jsonl", "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(d, ensure_ascii=False) + "\n" for d in docs)
        p = beam.Pipeline("FnApiRunner", options=PipelineOptions(list(runner_args)))
        docs_in = p | beam.io.ReadFromText(f"{tmp}/docs.jsonl") | "Parse" >> beam.Map(json.loads)
        config = NearDedupConfig(**kwargs)
        out = near_dedup_records(docs_in, tmp, config) | NearDedup(config, tmp)
        _ = out["edges"] | "E" >> beam.Map(json.dumps) | "WE" >> beam.io.WriteToText(f"{tmp}/edges")
        _ = (
            out["duplicates"]
            | "D" >> beam.Map(lambda r: json.dumps(r._asdict()))
            | "WD" >> beam.io.WriteToText(f"{tmp}/dups")
        )
        start = time.perf_counter()
        result = p.run()
        result.wait_until_finish()
        secs = time.perf_counter() - start
        counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}
        read = lambda pre: [json.loads(x) for f in Path(tmp).glob(f"{pre}*") for x in open(f)]  # noqa: E731
        edges = {(min(a, b), max(a, b)) for a, b in read("edges")}
        rep = {d["id"]: d["id"] for d in docs}
        rep.update({r["id"]: r["duplicate_of"] for r in read("dups")})
    return edges, rep, counters, secs


def quality(path: Path, shingle_size: int, threshold: float, num_perm: int, systems: bool):
    t0 = time.perf_counter()
    docs = load(path)
    idx = {d["id"]: i for i, d in enumerate(docs)}
    sets = token_sets(docs, shingle_size)
    truth_map = all_pairs(sets, threshold)
    true_pairs = [(docs[i]["id"], docs[j]["id"]) for i, j in truth_map]
    rng = np.random.default_rng(0)
    sample = [
        exact_jaccard(sets[i], sets[j]) for i, j in rng.integers(0, len(docs), (2000, 2)) if i != j
    ]
    head = {
        "shingle_size": shingle_size,
        "docs_after_exact_dedup": len(docs),
        "true_pairs": len(true_pairs),
        "docs_in_true_pairs": len({x for p in true_pairs for x in p}),
        "random_pair_jaccard_mean": round(float(np.mean(sample)), 4),
        "random_pair_jaccard_p99": round(float(np.quantile(sample, 0.99)), 4),
        "ground_truth_seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(head), flush=True)
    if not systems:
        return
    hasher = MinHasher(num_perm, 1, "affine32", shingle_size)
    for params in (None, lsh.optimal_params(threshold, num_perm, 0.05, 0.95)):
        linked, rep, (b, r) = datasketch_system(docs, hasher, threshold, params)
        name = f"datasketch MinHashLSH {b}x{r} (query + union-find)"
        row = score(name, true_pairs, linked, rep, sets, threshold, idx)
        print(json.dumps({**row, "bands": b, "rows": r}), flush=True)
    variants = [
        ("exact", DEFAULT_TRIAGE_SIGMAS, "twin"),
        ("exact", DEFAULT_TRIAGE_SIGMAS, "components"),
        ("exact", 0.0, "twin"),
        ("estimate", None, "twin"),
        ("none", None, "twin"),
    ]
    for verify, sigmas, rule in variants:
        extra = {} if sigmas is None else {"triage_sigmas": sigmas}
        edges, rep, counters, secs = beam_system(
            docs,
            shingle_size=shingle_size,
            threshold=threshold,
            num_perm=num_perm,
            verify=verify,
            keep_rule=rule,
            **extra,
        )
        name = (
            f"NearDedup verify={verify}"
            + ("" if sigmas is None else f" triage={sigmas:g}σ")
            + f" keep={rule}"
        )
        row = score(name, true_pairs, edges, rep, sets, threshold, idx)
        keys = (
            "candidate_edges",
            "edges_decided_by_signature",
            "edges_verified_exactly",
            "edges_dropped_by_verification",
            "near_duplicates",
            "cc_residual_edges",
            "cc_unconverged_nodes",
        )
        print(
            json.dumps(
                {**row, **{k: counters.get(k, 0) for k in keys}, "beam_seconds": round(secs, 1)}
            ),
            flush=True,
        )


def tree_rss_mib() -> float:
    """Resident memory of this process and all its descendants (Linux /proc), in MiB."""
    parent, rss = {}, {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                status = (d / "status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            parent[int(d.name)] = int(fields["PPid"])
            rss[int(d.name)] = int(fields.get("VmRSS", "0 kB").split()[0]) / 1024
    me = os.getpid()

    def mine(pid):
        while pid > 1:
            if pid == me:
                return True
            pid = parent.get(pid, 0)
        return False

    return sum(v for pid, v in rss.items() if mine(pid))


def whole_corpus(threshold: float, workers: int):
    """All of corpora/ja through read -> key -> exact dedup -> NearDedup on the FnApiRunner,
    cut after each stage so each stage's time is the difference of consecutive runs."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from beam_jobs.dedup.near import NearDedup, NearDedupConfig

    files = sorted(str(p) for p in CORPORA.glob("*.jsonl.gz"))
    tmp = tempfile.mkdtemp()
    args = [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]

    def to_doc(line, name):
        r = json.loads(line)
        return {
            "id": r["id"],
            "text": r["text"],
            "key": dedup_key(r["text"]),
            "n_chars": len(r["text"]),
            "source": r.get("source", name),
        }

    def build(p, upto):
        lines = [
            p | f"Read{i}" >> beam.io.ReadFromText(f) | f"Doc{i}" >> beam.Map(to_doc, Path(f).name)
            for i, f in enumerate(files)
        ]
        docs = (
            lines
            | beam.Flatten()
            | "ByKey" >> beam.Map(lambda d: (d["key"], d))
            | "ExactDedup" >> beam.CombinePerKey(lambda ds: min(ds, key=lambda d: d["id"]))
            | beam.Values()
        )
        if upto == "read+exact":
            return docs
        config = NearDedupConfig(threshold=threshold).resolved()
        records = near_dedup_records(docs, f"{tmp}/{upto}", config)
        if upto == "signatures":
            return records | beam.FlatMap(
                lambda r: (
                    lsh.band_keys(r.sig, config.bands, config.rows) if r.sig is not None else []
                )
            )
        return records | NearDedup(config, f"{tmp}/{upto}")

    peak = [0.0]
    done = threading.Event()

    def sample():
        while not done.wait(0.5):
            peak[0] = max(peak[0], tree_rss_mib())

    threading.Thread(target=sample, daemon=True).start()
    times = {}
    for upto in ("read+exact", "signatures", "near_dedup"):
        p = beam.Pipeline("FnApiRunner", options=PipelineOptions(args))
        built = build(p, upto)
        built = built["duplicates"] if isinstance(built, dict) else built
        _ = built | beam.combiners.Count.Globally() | beam.Map(print)
        start = time.perf_counter()
        result = p.run()
        result.wait_until_finish()
        times[upto] = time.perf_counter() - start
        if upto == "near_dedup":
            counters = {
                c.key.metric.name: c.committed
                for c in result.metrics().query()["counters"]
                if c.key.metric.namespace == "near_dedup"
            }
    done.set()
    print(
        json.dumps(
            {
                "files": len(files),
                "workers": workers,
                "seconds_cumulative": {k: round(v, 1) for k, v in times.items()},
                "seconds_stage": {
                    "read+key+exact_dedup": round(times["read+exact"], 1),
                    "signatures+band_keys": round(times["signatures"] - times["read+exact"], 1),
                    "buckets+verify+cc+keep": round(times["near_dedup"] - times["signatures"], 1),
                },
                "peak_rss_mib_driver_plus_workers": round(peak[0]),
                "counters": counters,
            },
            indent=1,
        ),
        flush=True,
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=CORPORA / "ja_python_docs.jsonl.gz")
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--num-perm", type=int, default=128)
    ap.add_argument("--shingle-sizes", type=int, nargs="+", default=[DEFAULT_SHINGLE_SIZE])
    ap.add_argument("--quality-only", action="store_true", help="ground truth statistics only")
    ap.add_argument("--whole-corpus", action="store_true", help="also run all of corpora/ja")
    ap.add_argument("--skip-quality", action="store_true", help="only the whole-corpus run")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args(argv)
    for n in [] if a.skip_quality else a.shingle_sizes:
        quality(a.corpus, n, a.threshold, a.num_perm, systems=not a.quality_only)
    if a.whole_corpus:
        whole_corpus(a.threshold, a.workers)


if __name__ == "__main__":
    main()
