"""`lm` on a subword run of the pipeline: lm.ngram, lm.train and lm.generate read the model's ids
(the `input_ids` column, or the text encoded with the saved model where a run has none), score
the whole validation split, and report perplexity per token and bits per character."""

import json
import math
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLE

from beam_jobs.prepare import run
from lm import generate as gen
from lm.data import iter_documents, load_manifest, load_vocab
from lm.ngram import main as ngram_main
from lm.train import main as train_main

FLAGS = ["--runner", "FnApiRunner", "--val-fraction", "0.1", "--num-shards", "2", "--no-report"]
SMALL = [
    "--batch-size",
    "4",
    "--block-size",
    "32",
    "--hidden",
    "32",
    "--emb-dim",
    "16",
    "--warmup-steps",
    "2",
    "--eval-every",
    "3",
    "--no-progress",
    "--no-plots",
    "--threads",
    "1",
]


@pytest.fixture(scope="module")
def subword_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("lm_subword") / "data"
    run(
        [
            "--input",
            str(SAMPLE),
            "--output",
            str(out),
            *FLAGS,
            "--tokenizer",
            "sentencepiece",
            "--vocab-size",
            "2000",
            "--token-formats",
            "parquet",
        ]
    )
    return out


def val_rows(out) -> list[dict]:
    return pq.read_table(out / "val", columns=["text", "n_tokens", "n_chars"]).to_pylist()


def test_the_documents_are_the_model_ids_with_or_without_an_input_ids_column(subword_dir):
    manifest = load_manifest(str(subword_dir))
    vocab = load_vocab(str(subword_dir), manifest)
    assert vocab.ids and len(vocab) == 2000
    texts = [r["text"] for r in val_rows(subword_dir)]
    from_column = list(iter_documents(str(subword_dir), manifest, vocab, "val"))
    encoded = vocab.encode_documents(texts)
    assert len(from_column) == len(texts) > 0
    for a, b, text in zip(from_column, encoded, texts):
        assert a.tolist() == b.tolist()
        assert vocab.decode(a) == text  # <bos>/<eos> dropped, byte fallback exact


def test_ngram_reports_perplexity_per_token_and_bits_per_char(subword_dir, tmp_path, capsys):
    out = tmp_path / "ngram.json"
    assert ngram_main(["--data", str(subword_dir), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "bits/char" in printed
    rows = val_rows(subword_dir)
    tokens = sum(r["n_tokens"] for r in rows) + len(rows)  # every id and each <eos>
    chars = sum(r["n_chars"] for r in rows)
    result = json.loads(out.read_text())
    for name, r in result.items():
        assert r["tokens"] == tokens and r["chars"] == chars, name
        assert r["bits_per_char"] == pytest.approx(r["nll"] / math.log(2) / chars)
        assert r["perplexity"] == pytest.approx(math.exp(r["nll"] / tokens))
    assert 1 < result["kneser_ney_3"]["perplexity"] < result["add_k_unigram"]["perplexity"] < 2000


def test_train_scores_the_whole_split_and_generate_needs_only_the_checkpoint(
    subword_dir, tmp_path, capsys
):
    data = tmp_path / "data"
    shutil.copytree(subword_dir, data)
    run_dir = tmp_path / "run"
    assert train_main(["--data", str(data), "--out", str(run_dir), "--max-steps", "3", *SMALL]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    rows = val_rows(data)
    assert metrics["val_tokens"] == sum(r["n_tokens"] for r in rows) + len(rows)
    assert metrics["val_chars"] == sum(r["n_chars"] for r in rows)
    # bits/char = the same NLL as the perplexity, per character instead of per token
    nll = math.log(metrics["val_perplexity"]) * metrics["val_tokens"]
    assert metrics["val_bits_per_char"] == pytest.approx(
        nll / math.log(2) / metrics["val_chars"], rel=1e-6
    )
    assert np.isfinite(metrics["val_perplexity"]) and metrics["val_perplexity"] > 1
    shutil.rmtree(data)  # the checkpoint carries the tokenizer model
    capsys.readouterr()
    prompt = "関数の引数"
    assert (
        gen.main(
            [
                "--checkpoint",
                str(run_dir / "checkpoint.pt"),
                "--prompt",
                prompt,
                "--max-new-tokens",
                "20",
                "--strategy",
                "greedy",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert text.startswith(prompt) and len(text) > len(prompt)
    model, vocab = gen.load_model(str(run_dir / "checkpoint.pt"))
    assert vocab.ids and vocab.decode(vocab.encode(prompt)) == prompt
