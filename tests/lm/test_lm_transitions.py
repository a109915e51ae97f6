"""Transition maps: bigram rows from the count tables and the GRU's next-character rows are
distributions (rows sum to 1), agree with a direct count, and `lm.interpret` draws them."""

from collections import Counter

import numpy as np
import pytest
import torch

from lm.data import iter_documents, load_manifest, load_vocab
from lm.interpret import main as interpret_main
from lm.model import GRULM, GRUConfig
from lm.ngram import CountTables
from lm.train import main as train_main
from lm.transitions import (
    bigram_rows,
    chosen_ids,
    gru_rows_after_bos,
    gru_rows_averaged,
    most_frequent,
    square_map,
    top_continuations,
    total_variation,
)
from tests.lm_fixtures import count_ngrams, random_texts, small_data_dir


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = small_data_dir(tmp_path_factory.mktemp("tr"), order=2)
    manifest = load_manifest(root)
    vocab = load_vocab(root, manifest)
    tables = CountTables.from_parquet(root, manifest, vocab, max_order=2)
    torch.manual_seed(0)
    model = GRULM(GRUConfig(len(vocab), 8, 16))
    return root, manifest, vocab, tables, model


def test_bigram_rows_sum_to_one_and_equal_a_direct_count(setup):
    root, manifest, vocab, tables, _ = setup
    ids = most_frequent(tables, vocab, 10)
    assert len(ids) == 10 and not {vocab.unk, vocab.bos, vocab.eos} & set(ids)
    rows = bigram_rows(tables, ids + [vocab.bos])
    assert np.allclose(rows.sum(axis=1), 1.0)
    counts = count_ngrams(random_texts(60, seed=1), 2)  # the fixture's train texts
    for r, a in enumerate(ids + [vocab.bos]):
        prev = vocab.tokens[a]
        after = Counter({g[1]: c for g, c in counts.items() if len(g) == 2 and g[0] == prev})
        total = sum(after.values())
        for b, c in after.items():
            assert rows[r, vocab.index[b]] == pytest.approx(c / total)
    # <eos> is never followed: its row is NaN, not a made-up distribution
    assert np.isnan(bigram_rows(tables, [vocab.eos])).all()


def test_gru_rows_sum_to_one(setup):
    root, manifest, vocab, tables, model = setup
    ids = most_frequent(tables, vocab, 6)
    after_bos = gru_rows_after_bos(model, vocab, ids)
    assert after_bos.shape == (6, len(vocab))
    assert np.allclose(after_bos.sum(axis=1), 1.0, atol=1e-9)
    averaged, seen = gru_rows_averaged(
        model, iter_documents(root, manifest, vocab, "val"), ids, max_tokens=10_000, chunk=7
    )
    occurring = seen > 0
    assert occurring.any()
    assert np.allclose(averaged[occurring].sum(axis=1), 1.0, atol=1e-9)
    assert np.isnan(averaged[~occurring]).all()
    # the displayed square map keeps the rest of the mass in its last column
    sq = square_map(after_bos, ids)
    assert sq.shape == (6, 7) and np.allclose(sq.sum(axis=1), 1.0)
    assert (sq >= -1e-12).all()


def test_averaged_rows_equal_a_position_by_position_loop(setup):
    root, manifest, vocab, tables, model = setup
    ids = most_frequent(tables, vocab, 3)
    docs = list(iter_documents(root, manifest, vocab, "val"))[:4]
    got, seen = gru_rows_averaged(model, iter(docs), ids, chunk=5)
    sums, n = np.zeros((3, len(vocab))), np.zeros(3)
    with torch.no_grad():
        for doc in docs:
            features, _ = model(torch.from_numpy(doc[:-1].astype(np.int64))[None])
            probs = model.log_probs(features[0]).double().exp().numpy()
            for t, tok in enumerate(doc[:-1]):
                if tok in ids:
                    sums[ids.index(tok)] += probs[t]
                    n[ids.index(tok)] += 1
    assert seen.tolist() == n.tolist()
    ok = n > 0
    assert np.allclose(got[ok], sums[ok] / n[ok, None], atol=1e-9)


def test_top_continuations_and_distance():
    class V:
        tokens = ["a", "b", "c"]

    row = np.array([0.2, 0.5, 0.3])
    assert top_continuations(row, V, 2) == [("b", 0.5), ("c", 0.3)]
    assert top_continuations(np.full(3, np.nan), V) == []
    assert total_variation(np.array([[1.0, 0, 0]]), np.array([[0, 1.0, 0]])).tolist() == [1.0]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        chosen_ids(type("W", (), {"index": {"a": 0}})(), ["a", "z"])


def test_interpret_cli_writes_maps_probe_and_prints_top_k(setup, tmp_path, capsys):
    root = setup[0]
    run = tmp_path / "run"
    train_main(
        [
            "--data",
            root,
            "--out",
            str(run),
            "--max-steps",
            "3",
            "--no-baselines",
            "--no-plots",
            "--hidden",
            "16",
            "--emb-dim",
            "8",
            "--batch-size",
            "4",
            "--block-size",
            "16",
            "--no-progress",
            "--threads",
            "1",
        ]
    )
    out = tmp_path / "interp"
    capsys.readouterr()
    assert (
        interpret_main(
            [
                "--checkpoint",
                str(run / "checkpoint.pt"),
                "--data",
                root,
                "--out",
                str(out),
                "--chars",
                "のに関。",
                "--probe-chars",
                "400",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "ngram:" in printed and "gru:" in printed and "probe over" in printed
    for name in ("transitions.png", "probe.png", "interpret.json"):
        assert (out / name).stat().st_size > 500
    assert (
        interpret_main(
            [
                "--checkpoint",
                str(run / "checkpoint.pt"),
                "--data",
                root,
                "--out",
                str(out),
                "--top",
                "5",
                "--context",
                "bos",
                "--probe-chars",
                "0",
            ]
        )
        == 0
    )
    assert (
        interpret_main(
            [
                "--checkpoint",
                str(run / "checkpoint.pt"),
                "--data",
                root,
                "--out",
                str(out),
                "--chars",
                "猫",
            ]
        )
        == 2
    )
