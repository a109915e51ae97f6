"""GRU + Kneser-Ney interpolation: the EM weight, counts without the held-out slice, the slice
kept out of training, and the `interpolated` entry of metrics.json."""

import json
import math
import shutil
from collections import Counter

import apache_beam as beam
import numpy as np
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from beam_jobs.counts.combiners import CountNgrams
from lm.data import TrainStream, load_manifest, load_vocab
from lm.holdout import holdout_rows, iter_holdout_documents
from lm.interpolate import fit_weight, mixed_nll, without_documents
from lm.ngram import KneserNey
from lm.ngram_tables import CountTables
from lm.train import main as train_main
from tests.lm_fixtures import random_texts, write_data_dir


def test_em_weight_recovers_the_mixture_and_minimizes_the_nll():
    rng = np.random.default_rng(0)
    V, n, true_w = 50, 40_000, 0.3
    pg, pk = rng.dirichlet(np.ones(V) * 0.3), rng.dirichlet(np.ones(V) * 0.3)
    from_gru = rng.random(n) < true_w
    targets = np.where(from_gru, rng.choice(V, n, p=pg), rng.choice(V, n, p=pk))
    g, k = np.log(pg[targets]), np.log(pk[targets])
    w = fit_weight(g, k)
    assert w == pytest.approx(true_w, abs=0.03)
    grid = np.linspace(0.01, 0.99, 99)
    assert mixed_nll(g, k, w) <= min(mixed_nll(g, k, x) for x in grid) + 1e-6
    assert fit_weight(np.log(np.full(10, 0.9)), np.log(np.full(10, 0.1))) > 0.99


def test_counts_without_documents_equal_the_counts_of_the_rest(tmp_path):
    rest, held = random_texts(40, seed=3), random_texts(8, seed=4)
    both = write_data_dir(tmp_path / "both", rest + held, held[:2], order=4)
    alone = write_data_dir(tmp_path / "rest", rest, held[:2], order=4)
    vocab = load_vocab(both, load_manifest(both))
    full = CountTables.from_parquet(both, load_manifest(both), vocab)
    want = CountTables.from_parquet(alone, load_manifest(alone), vocab)
    got, exact = without_documents(full, [vocab.encode_document(t) for t in held])
    assert exact
    for n in range(1, 5):
        if n > 1:
            assert np.array_equal(got.keys[n], want.keys[n])
        assert np.array_equal(got.counts[n], want.counts[n])
    stream = np.concatenate([vocab.encode_document(t) for t in held]).astype(np.int64)
    assert np.allclose(KneserNey(got, 4).score(stream), KneserNey(want, 4).score(stream))


def test_the_held_out_slice_is_never_trained_on(tmp_path):
    root = write_data_dir(tmp_path / "d", random_texts(200, seed=5), random_texts(5, seed=6))
    manifest = load_manifest(root)
    rows = holdout_rows(root, manifest, 10_000)
    vocab = load_vocab(root, manifest)
    held = [vocab.decode(d) for d in iter_holdout_documents(root, manifest, vocab, rows)]
    train_tokens = manifest["splits"]["train"]["tokens"]
    assert held and sum(len(t) + 1 for t in held) <= train_tokens // 20 + 41
    assert holdout_rows(root, manifest, 0) == {}

    seen = []

    class Recording(type(vocab)):
        def encode_document(self, text):
            seen.append(text)
            return super().encode_document(text)

    recording = Recording(vocab.tokens, vocab.tokenizer)
    stream = TrainStream(root, manifest, recording, 2, 8, holdout=rows)
    list(stream.epoch_batches(stream.units(), 0, 0, 1))
    everything = [
        t
        for p in sorted((tmp_path / "d" / "train").glob("*.parquet"))
        for t in pq.read_table(p, columns=["text"]).column(0).to_pylist()
    ]
    rest = list(everything)
    for t in held:
        rest.remove(t)
    assert sorted(seen) == sorted(rest)


def test_metrics_report_the_interpolation(tmp_path):
    root = write_data_dir(tmp_path / "d", random_texts(150, seed=7), random_texts(20, seed=8))
    out = tmp_path / "run"
    args = [
        "--data",
        root,
        "--out",
        str(out),
        "--max-steps",
        "6",
        "--batch-size",
        "4",
        "--block-size",
        "16",
        "--hidden",
        "32",
        "--emb-dim",
        "16",
        "--warmup-steps",
        "2",
        "--no-progress",
        "--no-plots",
        "--threads",
        "1",
        "--amp",
        "off",
    ]
    assert train_main(args) == 0
    m = json.loads((out / "metrics.json").read_text())
    mix = m["interpolated"]
    assert mix["with"] in m["baselines"] and 0 <= mix["weight"] <= 1
    assert mix["val_tokens"] == m["val_tokens"] and mix["holdout_tokens"] > 0
    assert mix["holdout_removed_from_counts"] is True
    assert set(mix["by_order"]) == {"kneser_ney_1", "kneser_ney_2", "kneser_ney_3"}
    assert math.isfinite(mix["val_perplexity"])
    # -log(w p + (1 - w) q) <= -w log p - (1 - w) log q: never worse than the worse model
    worst = max(m["val_perplexity"], m["baselines"][mix["with"]])
    assert mix["val_perplexity"] <= worst + 1e-6
    assert m["domains"]["data"]["interpolated"] == mix


def test_the_summary_says_whether_the_gru_wins_and_why_not():
    from lm.train import verdict

    m = {
        "val_perplexity": 12.0,
        "baselines": {"kneser_ney_3": 11.0, "add_k_bigram": 30.0},
        "compute": {"tokens_seen": 1000, "tokens_per_second": 50.0},
        "steps": 3,
        "epochs_started": {"data": 1},
        "torch_threads": 1,
        "amp": "off",
        "hardware": {"load_average_at_start": [3.0, 2.0, 1.0]},
        "history": [{"val_perplexity": 20.0}, {"val_perplexity": 14.0}],
    }
    line = verdict(m)
    assert "does not beat kneser_ney_3 (11.000)" in line and "20.00 -> 14.00" in line
    assert "still improving" in line and "load average 3.0" in line
    assert verdict({**m, "val_perplexity": 10.0}).startswith("the GRU beats every baseline")


def test_pruned_tables_lose_the_slice_from_their_raw_counts(tmp_path):
    rest, held = random_texts(40, seed=3), random_texts(8, seed=4)
    root = write_data_dir(tmp_path / "both", rest + held, held[:2], order=4)
    shutil.rmtree(f"{root}/ngrams")
    with TestPipeline(runner="FnApiRunner") as p:
        _ = p | beam.Create(rest + held) | CountNgrams(root, "char", 4, 2, min_counts=(2,))
    manifest = json.loads((tmp_path / "both" / "manifest.json").read_text())
    manifest["ngrams"]["shards"] = [f"ngrams/ngrams-{s:05d}-of-00002.parquet" for s in range(2)]
    (tmp_path / "both" / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False))
    vocab = load_vocab(root, load_manifest(root))
    full = CountTables.from_parquet(root, load_manifest(root), vocab)
    assert full.pruned
    got, exact = without_documents(full, [vocab.encode_document(t) for t in held])
    assert not exact and got.pruned

    def grams(texts):
        c = Counter()
        for t in texts:
            ids = [int(i) for i in vocab.encode_document(t)]
            for n in range(1, 5):
                c.update(tuple(ids[j : j + n]) for j in range(len(ids) - n + 1))
        return c

    left = grams(rest)
    for g in grams(rest + held):
        before = full.rows_of(np.array([g]))[0]
        if before < 0:
            continue  # pruned from the tables
        after = got.rows_of(np.array([g]))[0]
        n = len(g)
        assert (got.counts[n][after] if after >= 0 else 0) == left[g]
        if after >= 0 and n < 4:
            assert got.continuation[n][after] == full.continuation[n][before]
    p = KneserNey(got, 4).distribution([vocab.bos, 5])
    assert p.sum() == pytest.approx(1.0, abs=1e-9)
