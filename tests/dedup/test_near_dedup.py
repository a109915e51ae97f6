"""NearDedup on the FnApiRunner against datasketch's MinHashLSH plus a union-find oracle.

Documents go through the production path to near dedup: `AddSignature`, the spill files (from
which verification reads the keys), then `NearDedup` on the `DedupRecord`s."""

import argparse
import glob
import json
import random
import tempfile

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to
from datasketch import MinHash, MinHashLSH
from datasketch.lsh import _optimal_param

from beam_jobs.dedup import lsh
from beam_jobs.dedup.minhash import MinHasher, sig_bytes
from beam_jobs.dedup.near import AddSignature, NearDedup, NearDedupConfig, add_near_dedup_args
from beam_jobs.dedup.near.candidates import _BandBatches, _ShardStars
from beam_jobs.dedup.near.verify import _Verifier
from beam_jobs.dedup.shingles import jaccard, shingle_set
from beam_jobs.io.spill import SpillDocuments
from beam_jobs.records import Document
from beam_jobs.text.normalize import dedup_key

KANA = [chr(c) for c in range(0x3041, 0x3097)]


def _doc(i, text):
    return {
        "id": f"d{i:04d}",
        "text": text,
        "key": dedup_key(text),
        "n_chars": len(text),
        "source": "synthetic",
    }


def _mutate(rng, text, k):
    chars = list(text)
    for _ in range(k):
        chars[rng.randrange(len(chars))] = rng.choice(KANA)
    return "".join(chars)


def synthetic_docs(n_clusters=30, seed=0):
    """Clusters of a random kana text and 0-3 lightly edited copies, plus short and empty keys."""
    rng = random.Random(seed)
    texts = []
    for c in range(n_clusters):
        base = "".join(rng.choice(KANA) for _ in range(300))
        texts.append(base)
        texts.extend(_mutate(rng, base, rng.randrange(1, 6)) for _ in range(c % 4))
    texts += ["あ", "い", "あい", ""]
    return [_doc(i, t) for i, t in enumerate(texts)]


def documents(docs):
    return [
        Document(d["id"], d["text"], d["key"], d["n_chars"], d["n_chars"], d["source"], "f", i + 1)
        for i, d in enumerate(docs)
    ]


def near_dedup(p, docs, tmp, config):
    """The production path from documents to NearDedup's outputs."""
    records = (
        p
        | beam.Create(documents(docs), reshuffle=False)
        | beam.ParDo(AddSignature(config.hasher()))
        | SpillDocuments(tmp, "spill", 2)
    )["records"]
    return records, records | NearDedup(config, tmp)


def run_near_dedup(docs, runner_options=(), counters=None, **kwargs):
    """(sorted kept ids, duplicate rows sorted by id) of NearDedup over docs; fills `counters`."""
    with tempfile.TemporaryDirectory() as tmp:
        p = beam.Pipeline("FnApiRunner", options=PipelineOptions(list(runner_options)))
        records, out = near_dedup(p, docs, tmp, NearDedupConfig(**kwargs))
        removed = out["duplicates"] | "Removed" >> beam.Map(lambda r: (r.id, True))
        kept = (
            {"record": records | "ById" >> beam.Map(lambda r: (r.id, r)), "removed": removed}
            | "JoinRemoved" >> beam.CoGroupByKey()
            | "Kept" >> beam.FlatMapTuple(lambda i, g: [] if list(g["removed"]) else [i])
        )
        _ = (
            kept
            | "KeptIds" >> beam.Map(json.dumps)
            | "WriteKept" >> beam.io.WriteToText(f"{tmp}/kept")
        )
        _ = (
            out["duplicates"]
            | "DupJson" >> beam.Map(lambda r: json.dumps(r._asdict()))
            | "WriteDups" >> beam.io.WriteToText(f"{tmp}/dups")
        )
        result = p.run()
        result.wait_until_finish()
        if counters is not None:
            for c in result.metrics().query()["counters"]:
                counters[c.key.metric.name] = counters.get(c.key.metric.name, 0) + c.committed
        kept = [json.loads(x) for f in glob.glob(f"{tmp}/kept*") for x in open(f, encoding="utf-8")]
        dups = [json.loads(x) for f in glob.glob(f"{tmp}/dups*") for x in open(f, encoding="utf-8")]
        return sorted(kept), sorted(dups, key=lambda r: r["id"])


def components_from(kept, dups):
    """id -> representative, from the pipeline output."""
    comp = {k: k for k in kept}
    comp.update({r["id"]: r["duplicate_of"] for r in dups})
    return comp


def datasketch_oracle(docs, threshold=0.8, num_perm=128, shingle_size=5, params=None):
    """Components from datasketch's MinHashLSH candidates (no verification) and union-find."""
    hasher = MinHasher(num_perm, 1, "affine32", shingle_size)
    index = MinHashLSH(threshold=threshold, num_perm=num_perm, params=params)
    sketches = {}
    for d in docs:
        if d["key"]:
            m = hasher.datasketch(d["key"])
            sketches[d["id"]] = m
            index.insert(d["id"], m)
    edges = [(i, j) for i, m in sketches.items() for j in index.query(m) if j != i]
    roots = lsh.components(edges, nodes=[d["id"] for d in docs])
    return roots


def test_components_equal_datasketch_lsh_and_union_find():
    docs = synthetic_docs()
    kept, dups = run_near_dedup(
        docs,
        verify="none",
        lsh_fn_weight=0.5,  # datasketch's weights
        keep_rule="components",
    )
    ours = components_from(kept, dups)
    oracle = datasketch_oracle(docs)
    assert ours == oracle
    unverified, verified = {}, {}
    default = components_from(
        *run_near_dedup(docs, verify="none", counters=unverified, keep_rule="components")
    )
    assert default == datasketch_oracle(docs, params=(16, 8))
    # each (member, center) pair counts once, however many bands it shares
    run_near_dedup(docs, verify="exact", counters=verified)
    assert unverified["candidate_edges"] == verified["candidate_edges"] > 0
    assert len(dups) > 20 and all(r["kind"] == "near" for r in dups)
    # every removed document points at the smallest id of its component, which is kept
    assert all(r["duplicate_of"] < r["id"] and r["duplicate_of"] in kept for r in dups)


def test_verification_keeps_true_pairs_and_counts():
    docs = synthetic_docs()
    kept, dups = run_near_dedup(docs, verify="exact", keep_rule="components")
    by_id = {d["id"]: d for d in docs}
    for r in dups:
        sim = jaccard(
            shingle_set(by_id[r["id"]]["key"], 5), shingle_set(by_id[r["duplicate_of"]]["key"], 5)
        )
        assert sim >= 0.6  # kept doc may be two hops away; direct edges are >= 0.8 (exact)
        assert 0.0 <= r["similarity"] <= 1.0
    assert components_from(kept, dups) == components_from(
        *run_near_dedup(docs, verify="estimate", keep_rule="components")
    )


def test_triage_decides_clear_pairs_by_signature_with_the_same_result():
    docs = synthetic_docs()
    triaged, all_exact = {}, {}

    def pairs(result):  # the similarity of a pair decided by signature is its estimate
        kept, dups = result
        return kept, [(r["id"], r["duplicate_of"]) for r in dups]

    assert pairs(run_near_dedup(docs, counters=triaged)) == pairs(
        run_near_dedup(docs, triage_sigmas=0, counters=all_exact)
    )
    for c in (triaged, all_exact):
        assert (
            c.get("edges_decided_by_signature", 0) + c["edges_verified_exactly"]
            == c["candidate_edges"]
            > 0
        )
    assert "edges_decided_by_signature" not in all_exact
    assert triaged["candidate_edges"] == all_exact["candidate_edges"]
    assert 0 < triaged["edges_verified_exactly"] < triaged["candidate_edges"]


def test_triage_margin_leaves_only_doubtful_estimates_undecided():
    config = NearDedupConfig()
    assert config.margin() == pytest.approx(4 * (0.8 * 0.2 / 128) ** 0.5)  # 0.141
    triage = _Verifier("estimate", 0.8, config.hasher(), margin=config.margin())
    sig = np.arange(128, dtype=np.uint32)

    def agreeing(k):  # a signature equal to `sig` in k of 128 slots
        other = sig.copy()
        other[k:] += 1000
        return other

    assert triage.decide(sig, agreeing(122)) == (True, 122 / 128)  # 0.953
    assert triage.decide(sig, agreeing(84)) == (False, 84 / 128)  # 0.656
    assert triage.decide(sig, agreeing(103))[0] is None  # 0.805: the keys decide
    assert triage.decide(sig, agreeing(90))[0] is None  # 0.703


def test_a_chain_keeps_what_has_no_kept_twin():
    rng = random.Random(7)
    a = "".join(rng.choice(KANA) for _ in range(400))
    # B shares a's first 360 chars, C shares B's last 360 chars: A~B, B~C, A and C far apart.
    b = a[40:] + "".join(rng.choice(KANA) for _ in range(40))
    c = b[40:] + "".join(rng.choice(KANA) for _ in range(40))
    docs = [_doc(2, c), _doc(0, a), _doc(1, b)]
    ja = lambda x, y: jaccard(shingle_set(x, 5), shingle_set(y, 5))  # noqa: E731
    assert ja(a, b) >= 0.8 and ja(b, c) >= 0.8 and ja(a, c) < 0.8
    # many short bands: every pair is a candidate, exact verification drops A-C
    settings = {"verify": "exact", "bands": 32, "rows": 4, "cc_rounds": 1}
    kept, dups = run_near_dedup(docs, **settings)  # the twin rule: C has no kept twin
    assert kept == ["d0000", "d0002"]
    assert [(r["id"], r["duplicate_of"], round(r["similarity"], 6)) for r in dups] == [
        ("d0001", "d0000", round(ja(a, b), 6))
    ]
    kept, dups = run_near_dedup(docs, keep_rule="components", **settings)
    assert kept == ["d0000"]  # the component collapses, C to a document it does not resemble
    assert {(r["id"], r["duplicate_of"]) for r in dups} == {("d0001", "d0000"), ("d0002", "d0000")}


def test_every_removal_has_a_verified_twin_and_components_remove_a_superset():
    docs = synthetic_docs(seed=4)
    by_id = {d["id"]: d for d in docs}
    kept, dups = run_near_dedup(docs, triage_sigmas=0)  # every edge verified exactly
    assert dups and set(kept) == {d["id"] for d in docs} - {r["id"] for r in dups}
    for r in dups:
        assert r["duplicate_of"] in kept
        exact = jaccard(
            shingle_set(by_id[r["id"]]["key"], 5), shingle_set(by_id[r["duplicate_of"]]["key"], 5)
        )
        assert r["similarity"] == pytest.approx(exact) and exact >= 0.8
    _, most = run_near_dedup(docs, triage_sigmas=0, keep_rule="components")
    assert {r["id"] for r in dups} <= {r["id"] for r in most}


def test_twin_rule_falls_back_to_one_per_component_above_the_edge_limit():
    docs = synthetic_docs(n_clusters=8)
    counters = {}
    kept, dups = run_near_dedup(docs, max_component_edges=1, counters=counters)
    assert counters["components_over_edge_limit"] > 0
    assert (kept, [(r["id"], r["duplicate_of"]) for r in dups]) == (
        lambda k, d: (k, [(r["id"], r["duplicate_of"]) for r in d])
    )(*run_near_dedup(docs, keep_rule="components"))


def test_independent_of_workers_input_order_and_finishing_path():
    docs = synthetic_docs(seed=3)
    reference = run_near_dedup(docs)
    shuffled = docs[:]
    random.Random(1).shuffle(shuffled)
    assert run_near_dedup(shuffled) == reference
    # two worker processes, giant-bucket path for every shared bucket, residual union-find
    two = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
    assert run_near_dedup(shuffled, runner_options=two) == reference
    counters = {}
    assert run_near_dedup(docs, counters=counters, max_bucket_size=2, cc_rounds=1) == reference
    assert counters["giant_bucket_edges"] > 0
    # however many shards the buckets are cut into
    assert run_near_dedup(shuffled, bucket_shards=1) == reference
    assert run_near_dedup(docs, bucket_shards=5000) == reference


def test_band_batches_and_shard_stars_equal_grouping_by_band():
    # small batches (several flushes in one bundle) over few shards, against a plain grouping
    config = NearDedupConfig().resolved()
    hasher = config.hasher()
    docs = [d for d in synthetic_docs(seed=4) if d["key"]]
    sigs = [(d["id"], ((d["id"],), sig_bytes(hasher.signature(d["key"])), "f")) for d in docs]
    batches = _BandBatches(config.bands, config.rows, shards=3, batch_docs=7)
    batches.start_bundle()
    parts = [out for item in sigs for out in batches.process(item)]
    assert len(parts) >= 3 * (len(sigs) // 7)  # flushed while the bundle went on
    parts += [wv.value for wv in batches.finish_bundle()]
    by_shard = {}
    for shard, part in parts:
        by_shard.setdefault(shard, []).append(part)
    stars = _ShardStars(config.rows, limit=1000)
    stars.setup()
    edges = sorted(e for item in by_shard.items() for e in stars.process(item))
    buckets = {}
    for doc_id, (_, sig, _) in sigs:
        values = np.frombuffer(sig, dtype="<u4")
        for b in range(config.bands):
            band = values[b * config.rows : (b + 1) * config.rows].tobytes()
            buckets.setdefault((b, band), []).append(doc_id)
    expected = sorted((m, min(ids)) for ids in buckets.values() for m in ids if m != min(ids))
    assert edges == expected and len(edges) > 20


def test_long_chain_needs_the_residual_finish():
    # a path graph d0..d39 with ids in scrambled order: one CC round cannot converge
    rng = random.Random(5)
    text = "".join(rng.choice(KANA) for _ in range(2000))
    docs = [_doc(i, text[i * 10 : i * 10 + 300]) for i in range(40)]
    rng.shuffle(docs)
    counters = {}
    kept, dups = run_near_dedup(
        docs, counters=counters, threshold=0.85, verify="exact", cc_rounds=1, keep_rule="components"
    )
    assert kept == ["d0000"] and len(dups) == 39
    assert counters["cc_residual_edges"] > 0 and counters["cc_unconverged_nodes"] > 0
    counters = {}
    assert run_near_dedup(
        docs, counters=counters, threshold=0.85, verify="exact", cc_rounds=8, keep_rule="components"
    ) == (kept, dups)
    assert counters.get("cc_residual_edges", 0) == 0


def test_keep_longest():
    rng = random.Random(2)
    base = "".join(rng.choice(KANA) for _ in range(300))
    docs = [_doc(0, base), _doc(1, base + "んん"), _doc(2, base[:-2])]
    kept, dups = run_near_dedup(docs, keep="longest")
    assert kept == ["d0001"]
    assert sorted(r["duplicate_of"] for r in dups) == ["d0001", "d0001"]


def test_counters_account_for_every_removed_document(tmp_path):
    docs = synthetic_docs()
    _, dups = run_near_dedup(docs)
    p = beam.Pipeline("FnApiRunner", options=PipelineOptions([]))
    _, out = near_dedup(p, docs, str(tmp_path), NearDedupConfig())
    assert_that(
        out["duplicates"] | beam.combiners.Count.Globally(),
        equal_to([len(dups)]),
        label="DuplicateCount",
    )
    result = p.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}
    assert counters["near_duplicates"] == len(dups) > 0
    assert counters["signatures"] == len(docs) - 1 and counters["empty_keys"] == 1
    assert counters["candidate_edges"] >= len(dups)
    dist = {d.key.metric.name: d.committed for d in result.metrics().query()["distributions"]}
    assert dist["bucket_size"].max >= 2


def test_args_defaults_validation_and_settings(capsys):
    parser = argparse.ArgumentParser()
    add_near_dedup_args(parser)
    opts = parser.parse_args([])
    assert opts.near_dedup and opts.near_threshold == 0.8 and opts.near_verify == "exact"
    assert NearDedupConfig.from_options(parser.parse_args(["--no-near-dedup"])) is None
    s = NearDedupConfig.from_options(opts).settings()
    assert (s["bands"], s["rows"]) == (16, 8) == _optimal_param(0.8, 128, 0.05, 0.95)
    assert s["scheme"] == "affine32" and s["seed"] == 1 and s["num_perm"] == 128
    # the shard count of the buckets cannot change the output, so no stage key depends on it
    assert opts.near_bucket_shards == 256 and "bucket_shards" not in s
    # the names before the near- prefix still work, with a warning
    old = parser.parse_args(["--threshold", "0.7", "--keep", "longest", "--verify", "none"])
    assert (old.near_threshold, old.near_keep, old.near_verify) == (0.7, "longest", "none")
    assert "--threshold is deprecated; use --near-threshold" in capsys.readouterr().err
    for bad in (
        ["--near-threshold", "1.0"],
        ["--near-threshold", "0"],
        ["--near-bands", "4"],
        ["--near-bands", "20", "--near-rows", "10"],
        ["--near-shingle-size", "0"],
        ["--near-cc-rounds", "0"],
        ["--near-triage-sigmas", "-1"],
        ["--near-bucket-shards", "0"],
    ):
        with pytest.raises(ValueError, match="^--near-"):
            NearDedupConfig.from_options(parser.parse_args(bad))


def test_similarity_of_the_components_rule_is_the_signature_estimate():
    docs = synthetic_docs(n_clusters=8)
    _, dups = run_near_dedup(docs, keep_rule="components")
    hasher = MinHasher(128, 1, "affine32", 5)
    by_id = {d["id"]: d for d in docs}
    for r in dups:
        a, b = (hasher.signature(by_id[k]["key"]) for k in (r["id"], r["duplicate_of"]))
        assert r["similarity"] == pytest.approx(float(np.mean(a == b)))
        m = MinHash(128, seed=1, scheme="affine32", hashvalues=a)
        assert r["similarity"] == pytest.approx(
            m.jaccard(MinHash(128, seed=1, scheme="affine32", hashvalues=b))
        )
