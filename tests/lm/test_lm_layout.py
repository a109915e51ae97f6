"""Checkpoint and metrics.json layouts: a plain --data DIR is a mixture of one domain, the
current layout is version 2, and files of layout 1 (lm before format_version existed, written
by commit c0d1b05 into tests/lm/layout_v1/, see its README) still resume, generate, interpret
and read."""

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from lm import generate as gen
from lm.checkpoint import load_checkpoint, load_model
from lm.data import data_fingerprint, load_manifest
from lm.errors import CheckpointError
from lm.interpret import main as interpret_main
from lm.metrics import read_metrics
from lm.plots import main as plots_main
from lm.run_state import LEGACY_OPTIONS
from lm.train import main as train_main
from tests.lm_fixtures import small_data_dir

OLD = Path(__file__).parent / "layout_v1"
SMALL = [
    "--batch-size",
    "4",
    "--block-size",
    "16",
    "--hidden",
    "16",
    "--emb-dim",
    "8",
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
# the flags OLD/checkpoint_step8.pt was trained with (the crash run of its README)
RESUMABLE = [
    "--max-steps",
    "14",
    "--dropout",
    "0.1",
    "--layers",
    "2",
    "--no-baselines",
    "--no-plots",
    "--workers",
    "0",
    # the layout-1 run trained on the whole split: no held-out slice (lm.holdout)
    "--interpolation-holdout-tokens",
    "0",
    *SMALL,
]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return small_data_dir(tmp_path_factory.mktemp("layout"), min_count=2)


@pytest.fixture(scope="module")
def full(root, tmp_path_factory):
    """An uninterrupted run with the flags of the layout-1 checkpoint."""
    out = tmp_path_factory.mktemp("full") / "run"
    assert train_main(["--data", root, "--out", str(out), *RESUMABLE]) == 0
    return json.loads((out / "metrics.json").read_text())


def as_layout_1(ckpt: dict, manifest: dict) -> dict:
    """A layout-2 checkpoint of a plain --data DIR rewritten as c0d1b05's lm.train wrote it."""
    # keys and options added after layout 1 (issue 16) go too
    ckpt = {k: v for k, v in ckpt.items() if k not in ("format_version", "hidden")}
    ckpt["options"] = {k: v for k, v in ckpt["options"].items() if k not in LEGACY_OPTIONS}
    state = {k: v for k, v in ckpt["state"].items() if k != "hardware_amp"}
    stream = state.pop("domains")["data"]
    state.update({k: stream[k] for k in ("data_position", "next_worker", "epoch")})
    state["history"] = [{k: v for k, v in h.items() if k != "domains"} for h in state["history"]]
    return {
        **ckpt,
        "state": state,
        "data": ckpt["data"][0]["dir"],
        "data_fingerprint": data_fingerprint(manifest),
    }


def test_layout_1_checkpoint_resumes_where_it_stood(root, full, tmp_path):
    ckpt = load_checkpoint(str(OLD / "checkpoint_step8.pt"))
    assert ckpt["format_version"] == 2 and ckpt["data"][0]["name"] == "data"
    stream = ckpt["state"]["domains"]["data"]
    assert stream["data_position"] == {0: (0, 8)} and stream["steps"] == 8
    assert all("domains" in h for h in ckpt["state"]["history"])
    run = tmp_path / "old"
    run.mkdir()
    shutil.copy(OLD / "checkpoint_step8.pt", run / "checkpoint.pt")
    assert train_main(["--data", root, "--out", str(run), "--resume", *RESUMABLE]) == 0
    resumed = json.loads((run / "metrics.json").read_text())
    # written on another machine: float kernels may differ in the last bits there, a wrong
    # stream position, RNG state or schedule would not
    assert resumed["val_perplexity"] == pytest.approx(full["val_perplexity"], rel=1e-4)
    assert resumed["compute"]["tokens_seen"] == full["compute"]["tokens_seen"]
    for key in ("val_loss", "train_loss"):
        assert [h[key] for h in resumed["history"]] == pytest.approx(
            [h[key] for h in full["history"]], rel=1e-4
        )


def test_layout_1_rewrite_resumes_bit_for_bit(root, full, tmp_path):
    """The upgrade loses nothing: a run crashed here, its checkpoint rewritten in layout 1
    (the same keys as the real layout-1 file), ends exactly like the uninterrupted run."""
    run = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_main(["--data", root, "--out", str(run), "--simulate-crash-at", "10", *RESUMABLE])
    path = run / "checkpoint.pt"
    old = as_layout_1(torch.load(path, weights_only=False), load_manifest(root))
    real = torch.load(OLD / "checkpoint_step8.pt", weights_only=False)
    assert sorted(old) == sorted(real) and sorted(old["state"]) == sorted(real["state"])
    torch.save(old, path)
    assert train_main(["--data", root, "--out", str(run), "--resume", *RESUMABLE]) == 0
    resumed = json.loads((run / "metrics.json").read_text())
    assert resumed["val_perplexity"] == full["val_perplexity"]
    assert resumed["history"] == [
        {**h, "seconds": r["seconds"]} for h, r in zip(full["history"], resumed["history"])
    ]


def test_layout_1_checkpoint_generates_and_interprets(root, tmp_path, capsys):
    model, vocab = load_model(str(OLD / "checkpoint_step8.pt"))
    assert model.config.layers == 2 and len(vocab) == model.config.vocab_size
    assert (
        gen.main(
            [
                "--checkpoint",
                str(OLD / "checkpoint_step8.pt"),
                "--prompt",
                "の",
                "--max-new-tokens",
                "10",
            ]
        )
        == 0
    )
    assert (
        interpret_main(
            [
                "--checkpoint",
                str(OLD / "checkpoint_step8.pt"),
                "--data",
                root,
                "--out",
                str(tmp_path / "interp"),
                "--top",
                "4",
                "--probe-chars",
                "0",
            ]
        )
        == 0
    )
    assert "ngram:" in capsys.readouterr().out


def test_unknown_checkpoint_version_is_refused(tmp_path, capsys):
    ckpt = torch.load(OLD / "checkpoint_step8.pt", weights_only=False)
    torch.save({**ckpt, "format_version": 3}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="format_version 3"):
        load_checkpoint(str(tmp_path / "future.pt"))
    assert gen.main(["--checkpoint", str(tmp_path / "future.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "reads versions 1 and 2" in err and "\n" not in err


def test_one_directory_is_a_mixture_of_one_domain(root, tmp_path):
    """`--data DIR` and `--data data=DIR:1` are the same run, in the same layout."""
    args = ["--max-steps", "8", "--no-plots", *SMALL]
    plain, named = tmp_path / "plain", tmp_path / "named"
    assert train_main(["--data", root, "--out", str(plain), *args]) == 0
    assert train_main(["--data", f"data={root}:1", "--out", str(named), *args]) == 0
    a = json.loads((plain / "metrics.json").read_text())
    b = json.loads((named / "metrics.json").read_text())
    assert a["format_version"] == 2 and list(a["domains"]) == ["data"]
    for key in ("val_perplexity", "val_bits_per_char", "baselines", "steps", "epochs_started"):
        assert a[key] == b[key]
    assert [h["val_loss"] for h in a["history"]] == [h["val_loss"] for h in b["history"]]
    d = a["domains"]["data"]
    assert d["val_perplexity"] == a["val_perplexity"] and d["baselines"] == a["baselines"]
    assert d["train_steps"] == a["steps"] == 8 and a["mixture"]["weights"] == {"data": 1.0}
    assert {"add_k_unigram", "kneser_ney_3"} <= set(d["baseline_details"])
    for h in a["history"]:
        assert h["domains"]["data"]["val_loss"] == h["val_loss"]
    ckpt = torch.load(plain / "checkpoint.pt", weights_only=False)
    assert ckpt["format_version"] == 2 and [x["name"] for x in ckpt["data"]] == ["data"]
    cache = json.loads((plain / "baselines.json").read_text())
    assert cache["format_version"] == 2 and list(cache["domains"]) == ["data"]


def test_layout_1_metrics_read_in_layout_2():
    single = read_metrics(str(OLD / "metrics_single.json"))
    old = json.loads((OLD / "metrics_single.json").read_text())
    assert single["format_version"] == 2 and list(single["domains"]) == ["data"]
    d = single["domains"]["data"]
    assert d["val_perplexity"] == old["val_perplexity"] == single["val_perplexity"]
    assert d["baselines"] == old["baselines"] == single["baselines"]
    assert d["baseline_details"] == old["baseline_details"]
    assert single["epochs_started"] == {"data": old["epochs_started"]}
    assert [h["domains"]["data"]["val_loss"] for h in single["history"]] == [
        h["val_loss"] for h in old["history"]
    ]

    mixture = read_metrics(str(OLD / "metrics_mixture.json"))
    old = json.loads((OLD / "metrics_mixture.json").read_text())
    w = old["mixture"]["weights"]
    for name in ("add_k_unigram", "kneser_ney_3"):
        expected = math.exp(sum(w[k] * math.log(old["baselines"][f"{k}:{name}"]) for k in w))
        assert mixture["baselines"][name] == pytest.approx(expected, rel=1e-12)
        for k in w:
            assert (
                mixture["domains"][k]["baseline_details"][name]
                == old["baseline_details"][f"{k}:{name}"]
            )
    assert mixture["history"] == old["history"]


def test_plots_cli_reads_layout_1_and_2_metrics(tmp_path, capsys):
    new = tmp_path / "new"
    new.mkdir()
    current = read_metrics(str(OLD / "metrics_mixture.json"))
    (new / "metrics.json").write_text(json.dumps(current))
    assert (
        plots_main(
            [
                "--pretrain",
                str(OLD / "metrics_mixture.json"),
                "--run",
                f"again={new}",
                "--out",
                str(tmp_path / "cpt.png"),
            ]
        )
        == 0
    )
    assert (tmp_path / "cpt.png").stat().st_size > 1000
    assert "| again |" in capsys.readouterr().out
    (new / "metrics.json").write_text(json.dumps({**current, "format_version": 9}))
    assert plots_main(["--pretrain", str(new), "--out", str(tmp_path / "x.png")]) == 2
    assert "format_version 9" in capsys.readouterr().err
