"""Mixtures of domains: the sampler, weight specifications, the shared vocabulary, mixture
training (per-domain evaluation, resume) and continued pretraining from a checkpoint."""

import json
import math
from collections import Counter

import pytest
import torch

from lm.mixture import (
    MixtureError,
    MixtureSampler,
    oov_train_tokens,
    parse_domain_spec,
    temperature_weights,
    union_vocab,
)
from lm.train import main as train_main
from tests.lm_fixtures import random_texts, write_data_dir

SMALL = [
    "--batch-size",
    "4",
    "--block-size",
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
SHAPE = ["--hidden", "32", "--emb-dim", "16"]


def step_counts(sampler, start, stop):
    """How many of the steps start .. stop-1 each domain gets."""
    return {
        **dict.fromkeys(sampler.names, 0),
        **Counter(sampler.domain_at(s) for s in range(start, stop)),
    }


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("mix")
    general = write_data_dir(root / "general", random_texts(50, 1), random_texts(12, 2))
    # the domain has characters the general corpus never saw
    domain = write_data_dir(
        root / "domain", random_texts(40, 3, extra="猫犬"), random_texts(10, 4, extra="猫犬")
    )
    return general, domain


@pytest.mark.parametrize(
    "weights",
    [
        {"a": 0.6, "b": 0.4},
        {"general": 0.5, "domain": 0.3, "code": 0.2},
        {"x": 0.9, "y": 0.1, "never": 0.0},
    ],
)
def test_sampler_proportions_within_tolerance_over_many_batches(weights):
    n = 40_000
    sampler = MixtureSampler(weights, seed=7)
    counts = step_counts(sampler, 0, n)
    total = sum(weights.values())
    for name, w in weights.items():
        p = w / total
        sigma = math.sqrt(n * p * (1 - p))
        assert abs(counts[name] - n * p) <= 4 * sigma + 1e-9, (name, counts)
    if "never" in weights:
        assert counts["never"] == 0


def test_sampler_is_deterministic_under_a_seed_and_resumable_by_step():
    a = MixtureSampler({"a": 0.5, "b": 0.5}, seed=3)
    b = MixtureSampler({"a": 0.5, "b": 0.5}, seed=3)
    c = MixtureSampler({"a": 0.5, "b": 0.5}, seed=4)
    steps = range(0, 10_000)
    seq_a = [a.domain_at(s) for s in steps]
    assert seq_a == [b.domain_at(s) for s in steps]
    assert seq_a != [c.domain_at(s) for s in steps]
    # a resumed run asks from its step on (crossing a block boundary): the same choices
    fresh = MixtureSampler({"a": 0.5, "b": 0.5}, seed=3)
    assert [fresh.domain_at(s) for s in range(4000, 10_000)] == seq_a[4000:]
    # random access in any order agrees too
    assert [a.domain_at(s) for s in (9999, 0, 5000, 17)] == [seq_a[s] for s in (9999, 0, 5000, 17)]
    with pytest.raises(MixtureError):
        MixtureSampler({"a": 0.0, "b": 0.0})


def test_temperature_weights():
    sizes = {"big": 9_000_000, "small": 1_000_000}
    assert temperature_weights(sizes, 1.0) == pytest.approx({"big": 0.9, "small": 0.1})
    assert temperature_weights(sizes, 2.0) == pytest.approx({"big": 0.75, "small": 0.25})
    flat = temperature_weights(sizes, 1e6)
    assert flat["big"] == pytest.approx(0.5, abs=1e-5)
    with pytest.raises(MixtureError):
        temperature_weights(sizes, 0.0)


def test_parse_domain_spec():
    assert parse_domain_spec("general=/d/g:0.6") == ("general", "/d/g", 0.6)
    assert parse_domain_spec("domain=/d/x") == ("domain", "/d/x", None)
    assert parse_domain_spec("d=gs://bucket/x:1") == ("d", "gs://bucket/x", 1.0)
    for bad in ("/no/name", "bad name=/d:1", "a=/d:-1", "a=:0.5", "a=/d:nan"):
        with pytest.raises(MixtureError):
            parse_domain_spec(bad)


def test_union_vocabulary_orders_by_summed_count_and_counts_unmapped_tokens():
    a = {
        "tokens": ["<unk>", "<bos>", "<eos>", "x", "y"],
        "counts": [0, 2, 2, 5, 1],
        "total_tokens": 6,
        "unk_tokens": 0,
    }
    b = {
        "tokens": ["<unk>", "<bos>", "<eos>", "y", "z"],
        "counts": [1, 3, 3, 7, 2],
        "total_tokens": 10,
        "unk_tokens": 1,
    }
    tokens, counts = union_vocab([a, b])
    assert tokens == ["<unk>", "<bos>", "<eos>", "y", "x", "z"]
    assert counts == [1, 5, 5, 8, 5, 2]
    assert oov_train_tokens(b, a["tokens"]) == (1, 2 + 1, 10)  # z, plus b's own <unk>


def _domain_metrics(out):
    return json.loads((out / "metrics.json").read_text())


def test_mixture_run_evaluates_every_domain_and_keeps_proportions(dirs, tmp_path):
    general, domain = dirs
    out = tmp_path / "mix"
    train_main(
        [
            "--data",
            f"general={general}:0.75",
            "--data",
            f"domain={domain}:0.25",
            "--out",
            str(out),
            "--max-steps",
            "40",
            "--no-baselines",
            *SHAPE,
            *SMALL,
            "--eval-every",
            "20",
        ]
    )
    m = _domain_metrics(out)
    assert set(m["domains"]) == {"general", "domain"}
    expected = step_counts(MixtureSampler({"general": 0.75, "domain": 0.25}, seed=0), 0, 40)
    assert {k: v["train_steps"] for k, v in m["domains"].items()} == expected
    weighted = (
        0.75 * m["domains"]["general"]["val_loss"] + 0.25 * m["domains"]["domain"]["val_loss"]
    )
    assert m["val_loss"] == pytest.approx(weighted)
    assert m["val_perplexity"] == pytest.approx(math.exp(weighted))
    assert [h["step"] for h in m["history"]] == [0, 20, 40]
    for h in m["history"]:
        assert set(h["domains"]) == {"general", "domain"}
        assert h["val_loss"] == pytest.approx(
            sum(d["weight"] * d["val_loss"] for d in h["domains"].values())
        )
    assert m["history"][0]["train_loss"] is None
    # the vocabulary is the union: the domain's extra characters are not <unk>
    assert m["domains"]["domain"]["unk_mapped"]["distinct"] == 0
    for name in ("domains.png", "loss.png", "perplexity.png", "bigram_heatmap_domain.png"):
        assert (out / name).stat().st_size > 1000


def test_mixture_run_resumes_like_an_uninterrupted_one(dirs, tmp_path):
    general, domain = dirs
    args = [
        "--data",
        f"general={general}:0.5",
        "--data",
        f"domain={domain}:0.5",
        "--max-steps",
        "14",
        "--dropout",
        "0.1",
        "--no-baselines",
        "--no-plots",
        *SHAPE,
        *SMALL,
    ]
    train_main(["--out", str(tmp_path / "full"), *args])
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_main(["--out", str(tmp_path / "crashed"), "--simulate-crash-at", "10", *args])
    train_main(["--out", str(tmp_path / "crashed"), "--resume", *args])
    a, b = _domain_metrics(tmp_path / "full"), _domain_metrics(tmp_path / "crashed")
    assert a["val_perplexity"] == b["val_perplexity"]
    assert a["history"] == [
        {**h, "seconds": a["history"][i]["seconds"]} for i, h in enumerate(b["history"])
    ]
    # different weights are a different run
    assert (
        train_main(
            [
                "--out",
                str(tmp_path / "crashed"),
                "--resume",
                *[x.replace(f"{domain}:0.5", f"{domain}:0.7") for x in args],
            ]
        )
        == 2
    )


def test_continued_pretraining_maps_unknown_characters_to_unk(dirs, tmp_path, capsys):
    general, domain = dirs
    pre = tmp_path / "pre"
    train_main(
        [
            "--data",
            general,
            "--out",
            str(pre),
            "--max-steps",
            "6",
            "--no-baselines",
            "--no-plots",
            *SHAPE,
            *SMALL,
        ]
    )
    ckpt = torch.load(pre / "checkpoint.pt", weights_only=False)
    assert "猫" not in ckpt["vocab"]
    out = tmp_path / "cpt"
    capsys.readouterr()
    train_main(
        [
            "--data",
            f"general={general}:0.5",
            "--data",
            f"domain={domain}:0.5",
            "--init-from",
            str(pre / "checkpoint.pt"),
            "--out",
            str(out),
            "--max-steps",
            "4",
            "--no-baselines",
            "--no-plots",
            *SMALL,
        ]
    )
    err = capsys.readouterr().err
    assert "domain: weight 0.5000" in err and "map to <unk>" in err
    m = _domain_metrics(out)
    unk = m["domains"]["domain"]["unk_mapped"]
    assert unk["distinct"] == 2 and unk["train_tokens"] > 0  # 猫 and 犬
    assert m["domains"]["general"]["unk_mapped"]["distinct"] == 0
    assert m["data"]["vocab_size"] == len(ckpt["vocab"])
    assert m["model"]["hidden"] == 32  # the checkpoint's shape
    # step 0 is the pretrained model itself
    first = m["history"][0]
    assert first["step"] == 0 and first["train_loss"] is None
    # one plain directory works too, and also starts with the pretrained model's evaluation
    single = tmp_path / "single"
    train_main(
        [
            "--data",
            domain,
            "--init-from",
            str(pre / "checkpoint.pt"),
            "--out",
            str(single),
            "--max-steps",
            "4",
            "--no-baselines",
            "--no-plots",
            *SMALL,
        ]
    )
    s = _domain_metrics(single)
    assert s["history"][0]["step"] == 0 and s["history"][0]["train_loss"] is None
    assert s["init_from"]["unk_mapped"]["data"]["distinct"] == 2
    capsys.readouterr()
    # a shape that contradicts the checkpoint is refused, in one line
    code = train_main(
        [
            "--data",
            f"domain={domain}:1",
            "--init-from",
            str(pre / "checkpoint.pt"),
            "--out",
            str(tmp_path / "bad"),
            "--max-steps",
            "2",
            "--hidden",
            "64",
            *SMALL,
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --hidden 64 differs") and "\n" not in err


@pytest.mark.parametrize(
    "data, extra, message",
    [
        (["a={g}:0.5", "a={d}:0.5"], [], "names must differ"),
        (["a={g}:0.5", "b={d}"], [], "needs a weight"),
        (["a={g}:0", "b={d}:0"], [], "sum to 0"),
        (["a={g}:0.5", "b={d}:0.5"], ["--mix-temperature", "1"], "either"),
        (["{g}"], ["--mix-temperature", "1"], "needs several"),
    ],
)
def test_bad_mixture_flags_fail_in_one_line(dirs, tmp_path, capsys, data, extra, message):
    general, domain = dirs
    args = []
    for spec in data:
        args += ["--data", spec.format(g=general, d=domain)]
    assert (
        train_main([*args, *extra, "--out", str(tmp_path / "x"), "--max-steps", "2", *SMALL]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_temperature_mixture_weights_follow_train_sizes(dirs, tmp_path):
    general, domain = dirs
    out = tmp_path / "temp"
    train_main(
        [
            "--data",
            f"general={general}",
            "--data",
            f"domain={domain}",
            "--mix-temperature",
            "2",
            "--out",
            str(out),
            "--max-steps",
            "2",
            "--no-baselines",
            "--no-plots",
            *SHAPE,
            *SMALL,
        ]
    )
    m = _domain_metrics(out)
    sizes = {}
    for name, path in (("general", general), ("domain", domain)):
        sizes[name] = json.loads(open(f"{path}/manifest.json").read())["splits"]["train"]["tokens"]
    assert m["mixture"]["weights"] == pytest.approx(temperature_weights(sizes, 2.0))


def test_continued_pretraining_plot_and_table(tmp_path):
    from lm.plots import continued_pretraining_table, plot_continued_pretraining

    def run(weights, ppl, steps):
        hist = [
            {
                "step": s,
                "val_perplexity": 10.0 - s / steps,
                "domains": {
                    n: {"val_perplexity": p + s / steps, "weight": weights[n]}
                    for n, p in ppl.items()
                },
            }
            for s in range(0, steps + 1, steps // 2)
        ]
        return {
            "steps": steps,
            "history": hist,
            "val_perplexity": 7.0,
            "mixture": {"weights": weights},
            "domains": {n: {"val_perplexity": p} for n, p in ppl.items()},
        }

    pre = run({"general": 1.0, "domain": 0.0}, {"general": 5.0, "domain": 16.0}, 10)
    cpt = run({"general": 0.5, "domain": 0.5}, {"general": 6.0, "domain": 8.0}, 4)
    plot_continued_pretraining(pre, {"d=0.5": cpt}, str(tmp_path / "cpt.png"))
    assert (tmp_path / "cpt.png").stat().st_size > 1000
    table = continued_pretraining_table(pre, {"d=0.5": cpt}).splitlines()
    assert len(table) == 4 and "+1.000 (+20.0%)" in table[3] and "-8.000 (-50.0%)" in table[3]
