"""The hand-off between the two halves: `beam_jobs.prepare` on the bundled sample, read back
by `lm` exactly as a training run reads it (manifest, vocabulary, training stream, n-gram
count tables), a few training steps, and the whole validation split scored."""

import json
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLE

from beam_jobs.counts.counting import ngrams_of
from beam_jobs.prepare import run
from beam_jobs.records import DOC_SCHEMA, NGRAM_SCHEMA
from lm.data import TrainStream, iter_documents, load_manifest, load_vocab
from lm.ngram import CountTables, KneserNey, evaluate
from lm.train import train
from lm.train_options import parse_args


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("contract") / "data"
    run(
        [
            "--input",
            str(SAMPLE),
            "--output",
            str(out),
            "--runner",
            "FnApiRunner",
            "--val-fraction",
            "0.1",
            "--num-shards",
            "2",
            "--no-report",
        ]
    )
    return out


def val_texts(out) -> list[str]:
    return pq.read_table(out / "val", columns=["text"]).column("text").to_pylist()


def test_lm_reads_what_the_pipeline_writes(prepared):
    manifest = load_manifest(str(prepared))
    for split in ("train", "val"):
        for shard in manifest["splits"][split]["shards"]:
            table = pq.read_table(prepared / shard["path"])
            assert table.schema.equals(DOC_SCHEMA) and table.num_rows == shard["rows"]
    vocab = load_vocab(str(prepared), manifest)
    train_text = "".join(
        pq.read_table(prepared / "train", columns=["text"]).column("text").to_pylist()
    )
    assert set(vocab.tokens[3:]) == set(train_text)  # every train character, nothing else
    texts = val_texts(prepared)
    docs = list(iter_documents(str(prepared), manifest, vocab, "val"))
    assert len(docs) == len(texts) == manifest["splits"]["val"]["rows"]
    assert sum(len(d) - 1 for d in docs) == sum(map(len, texts)) + len(texts)
    stream = iter(TrainStream(str(prepared), manifest, vocab, batch_size=4, block_size=32))
    batch = next(stream)
    assert batch["x"].shape == batch["y"].shape == (4, 32)
    assert int(batch["x"].max()) < len(vocab)


def test_count_tables_are_the_counts_of_the_train_shards(prepared):
    manifest = load_manifest(str(prepared))
    table = pq.read_table(prepared / "ngrams")
    assert table.schema.equals(NGRAM_SCHEMA)
    expected = Counter()
    for text in pq.read_table(prepared / "train", columns=["text"]).column("text").to_pylist():
        expected.update(ngrams_of(list(text), manifest["ngrams"]["order"]))
    assert Counter({tuple(r["ngram"]): r["count"] for r in table.to_pylist()}) == expected
    vocab = load_vocab(str(prepared), manifest)
    tables = CountTables.from_parquet(str(prepared), manifest, vocab)
    assert tables.order == manifest["ngrams"]["order"] == 3
    kn = KneserNey(tables)
    for context in ([vocab.bos], [vocab.bos, vocab.index["の"]]):
        assert abs(kn.distribution(context).sum() - 1) < 1e-9
    blocks = [np.concatenate(list(iter_documents(str(prepared), manifest, vocab, "val")))]
    scored = evaluate([kn], blocks, vocab.bos)[kn.name]
    assert scored["tokens"] == sum(map(len, val_texts(prepared))) + len(val_texts(prepared))
    assert 1 < scored["perplexity"] < len(vocab)


def test_a_few_training_steps_and_the_whole_validation_split(prepared, tmp_path):
    metrics = train(
        parse_args(
            [
                "--data",
                str(prepared),
                "--out",
                str(tmp_path / "run"),
                "--max-steps",
                "3",
                "--hidden",
                "32",
                "--emb-dim",
                "16",
                "--batch-size",
                "4",
                "--block-size",
                "32",
                "--eval-every",
                "3",
                "--no-progress",
                "--no-plots",
                "--threads",
                "1",
            ]
        )
    )
    texts = val_texts(prepared)
    assert metrics["steps"] == 3
    assert metrics["val_tokens"] == sum(map(len, texts)) + len(texts)  # every val target
    assert metrics["val_chars"] == sum(map(len, texts))
    assert np.isfinite(metrics["val_perplexity"]) and metrics["val_perplexity"] > 1
    assert set(metrics["baselines"]) >= {"kneser_ney_3", "add_k_bigram"}
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["val_perplexity"] == metrics["val_perplexity"]
