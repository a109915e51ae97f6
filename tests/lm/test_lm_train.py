"""GRU training end to end on the fixture: metrics, resume equivalence, evaluation, generation."""

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from lm import generate as gen
from lm.accounting import cost_estimate, training_flops
from lm.data import iter_documents, load_manifest, load_vocab
from lm.evaluate import evaluate
from lm.model import GRULM, GRUConfig
from lm.ngram import AddKUnigram, CountTables
from lm.ngram import evaluate as evaluate_ngrams
from lm.train import main as train_main
from tests.lm_fixtures import small_data_dir

SMALL = [
    "--batch-size",
    "4",
    "--block-size",
    "16",
    "--hidden",
    "32",
    "--emb-dim",
    "16",
    "--warmup-steps",
    "3",
    "--eval-every",
    "4",
    "--checkpoint-every",
    "4",
    "--no-progress",
    "--threads",
    "1",
]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return small_data_dir(tmp_path_factory.mktemp("train"), min_count=2)


def test_uniform_model_has_perplexity_equal_to_vocabulary_size(root):
    manifest = load_manifest(root)
    vocab = load_vocab(root, manifest)
    model = GRULM(GRUConfig(len(vocab), 8, 8, head="full"))
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
    for lanes, block in ((1, 7), (5, 4)):
        r = evaluate(
            model,
            iter_documents(root, manifest, vocab, "val"),
            lanes=lanes,
            block_size=block,
            chars=100,
        )
        assert r["perplexity"] == pytest.approx(len(vocab), rel=1e-6)
        assert (
            r["tokens"] == manifest["splits"]["val"]["tokens"] + manifest["splits"]["val"]["rows"]
        )
    # the same holds for an n-gram model with no counts (add-k over an empty table)
    tables = CountTables(len(vocab), vocab.bos, vocab.eos, vocab.unk)
    unigram = AddKUnigram(tables, k=1.0)
    unigram.p[:] = 1.0 / len(vocab)
    docs = iter_documents(root, manifest, vocab, "val")
    got = evaluate_ngrams([unigram], docs, vocab.bos)["add_k_unigram"]["perplexity"]
    assert got == pytest.approx(len(vocab))


def test_hidden_state_is_carried_across_chunks(root):
    """Evaluating with short chunks equals evaluating each document in one piece."""
    manifest = load_manifest(root)
    vocab = load_vocab(root, manifest)
    torch.manual_seed(0)
    model = GRULM(GRUConfig(len(vocab), 8, 16, layers=2))
    a = evaluate(model, iter_documents(root, manifest, vocab, "val"), lanes=3, block_size=5)
    b = evaluate(model, iter_documents(root, manifest, vocab, "val"), lanes=1, block_size=4096)
    assert a["nll"] == pytest.approx(b["nll"], rel=1e-5)


def test_train_writes_metrics_and_plots(root, tmp_path):
    out = tmp_path / "run"
    train_main(
        ["--data", root, "--out", str(out), "--max-steps", "8", "--price-per-hour", "2.0", *SMALL]
    )
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("val_perplexity", "baselines", "history", "tokens_per_second", "flops"):
        assert key in metrics
    assert {"add_k_unigram", "add_k_bigram", "kneser_ney_2", "kneser_ney_3"} <= set(
        metrics["baselines"]
    )
    assert len(metrics["history"]) == 2
    assert (
        metrics["flops"] == 6 * metrics["compute"]["parameters"] * metrics["compute"]["tokens_seen"]
    )
    assert metrics["compute"]["cost"]["cost_at_price_per_hour"] > 0
    assert math.isfinite(metrics["val_bits_per_char"])
    for name in ("loss.png", "perplexity.png", "bigram_heatmap.png"):
        assert (out / name).stat().st_size > 1000
    # refuses to overwrite a run without --resume
    assert train_main(["--data", root, "--out", str(out), "--max-steps", "8", *SMALL]) == 2


@pytest.mark.parametrize("workers,carry", [(0, False), (2, False), (2, True)])
def test_interrupted_and_resumed_run_ends_like_an_uninterrupted_one(root, tmp_path, workers, carry):
    args = [
        "--carry-state" if carry else "--no-carry-state",
        "--data",
        root,
        "--max-steps",
        "14",
        "--dropout",
        "0.1",
        "--layers",
        "2",
        "--no-baselines",
        "--no-plots",
        "--workers",
        str(workers),
        *SMALL,
    ]
    full = tmp_path / "full"
    train_main(["--out", str(full), *args])
    crashed = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="simulated crash"):
        # checkpoints at steps 4 and 8; steps 9-10 are lost with the crash
        train_main(["--out", str(crashed), "--simulate-crash-at", "10", *args])
    assert torch.load(crashed / "checkpoint.pt", weights_only=False)["state"]["step"] == 8
    train_main(["--out", str(crashed), "--resume", *args])
    a = json.loads((full / "metrics.json").read_text())
    b = json.loads((crashed / "metrics.json").read_text())
    assert a["val_perplexity"] == b["val_perplexity"]
    assert a["compute"]["tokens_seen"] == b["compute"]["tokens_seen"]
    assert [h["val_loss"] for h in a["history"]] == [h["val_loss"] for h in b["history"]]
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]


def test_generation_strategies(root, tmp_path):
    out = tmp_path / "gen"
    train_main(
        [
            "--data",
            root,
            "--out",
            str(out),
            "--max-steps",
            "3",
            "--no-baselines",
            "--no-plots",
            *SMALL,
        ]
    )
    model, vocab = gen.load_model(str(out / "checkpoint.pt"))
    greedy = gen.generate(model, vocab, "の", 20, "greedy")
    assert greedy == gen.generate(model, vocab, "の", 20, "greedy", seed=9)
    s1 = gen.generate(model, vocab, "の", 20, "sample", temperature=0.8, top_k=5, top_p=0.9, seed=1)
    assert s1 == gen.generate(
        model, vocab, "の", 20, "sample", temperature=0.8, top_k=5, top_p=0.9, seed=1
    )
    assert vocab.bos not in s1 and vocab.eos not in s1 and len(s1) <= 20
    logits = torch.tensor([3.0, 2.0, 1.0, 0.0])
    assert torch.isinf(gen.filter_logits(logits, top_k=2)).tolist() == [False, False, True, True]
    kept = ~torch.isinf(gen.filter_logits(logits, top_p=0.7))
    assert kept.tolist() == [True, True, False, False]
    assert vocab.decode([vocab.unk], "<?>") == "<?>"


def test_accounting():
    assert training_flops(1000, 10) == 60000
    cost = cost_estimate(7200, 2_000_000, price_per_hour=3.0, price_per_million_tokens=0.5)
    assert cost["cost_at_price_per_hour"] == 6.0 and cost["cost_at_price_per_million_tokens"] == 1.0


@pytest.mark.parametrize("module", ["lm.train", "lm.ngram", "lm.generate", "lm.interpret"])
def test_cli_help(module):
    r = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert r.returncode == 0 and "usage" in r.stdout


def test_corrupted_or_truncated_checkpoint_is_a_one_line_error(root, tmp_path, capsys):
    """--resume, --init-from and lm.generate refuse a damaged checkpoint in one line: no
    traceback, and no silent fresh start over it."""
    good = tmp_path / "good"
    train_main(
        [
            "--data",
            root,
            "--out",
            str(good),
            "--max-steps",
            "2",
            "--no-baselines",
            "--no-plots",
            *SMALL,
        ]
    )
    data = (good / "checkpoint.pt").read_bytes()
    damaged = {
        "truncated": data[: len(data) // 2],
        "garbage": b"\x00not a checkpoint" * 50,
        "empty": b"",
    }
    for kind, content in damaged.items():
        run = tmp_path / kind
        run.mkdir()
        (run / "checkpoint.pt").write_bytes(content)
        capsys.readouterr()
        code = train_main(
            ["--data", root, "--out", str(run), "--resume", "--max-steps", "4", *SMALL]
        )
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.startswith("error: --resume: ") and "\n" not in err
        assert "truncated or corrupted" in err
        assert (run / "checkpoint.pt").read_bytes() == content  # not overwritten
        code = train_main(
            [
                "--data",
                root,
                "--out",
                str(tmp_path / f"init-{kind}"),
                "--init-from",
                str(run / "checkpoint.pt"),
                "--max-steps",
                "2",
                *SMALL,
            ]
        )
        err = capsys.readouterr().err.strip()
        assert code == 2 and "truncated or corrupted" in err and "\n" not in err
        assert gen.main(["--checkpoint", str(run / "checkpoint.pt"), "--prompt", "の"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err
    # a readable file that is not an lm.train checkpoint
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    assert gen.main(["--checkpoint", str(other)]) == 2
    assert "not an lm.train checkpoint" in capsys.readouterr().err
    assert gen.main(["--checkpoint", str(tmp_path / "missing.pt")]) == 2
    assert "no such checkpoint file" in capsys.readouterr().err
