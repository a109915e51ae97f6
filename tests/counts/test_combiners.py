"""The vocabulary and n-gram transforms equal a Counter over the same texts."""

import json
from collections import Counter

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_jobs.counts.combiners import BuildVocab, CountNgrams
from beam_jobs.counts.counting import ngrams_of

TEXTS = ["あいうあい", "ab\nあい", "", "𠮷🙂あ", "あいうあいう"]


def run_counts(out_dir, order, min_counts=(1,), buffer_mb=256.0, texts=TEXTS):
    with TestPipeline(runner="FnApiRunner") as p:
        texts_pc = p | beam.Create(texts)
        infos = texts_pc | CountNgrams(
            str(out_dir), "char", order, num_shards=3, min_counts=min_counts, buffer_mb=buffer_mb
        )
        vocab = texts_pc | BuildVocab(str(out_dir), "char", 1, 0)
        assert_that(
            infos | beam.Map(lambda i: i.shard), equal_to([0, 1, 2]), label="every shard written"
        )
        assert_that(
            vocab | beam.Map(lambda v: v["total_tokens"]),
            equal_to([sum(map(len, texts))]),
            label="vocab",
        )
    table = pq.read_table(out_dir / "ngrams").to_pylist()
    return Counter({tuple(r["ngram"]): r["count"] for r in table})


def reference(order, texts=TEXTS):
    want = Counter()
    for text in texts:
        want.update(ngrams_of(list(text), order))
    return want


@pytest.mark.parametrize("order", [3, 7, 8])
def test_ngram_counts_and_vocab_equal_counter(tmp_path, order):
    assert run_counts(tmp_path, order) == reference(order)
    vocab = json.loads((tmp_path / "vocab.json").read_text())
    assert dict(zip(vocab["tokens"][3:], vocab["counts"][3:])) == Counter("".join(TEXTS))
    summary = json.loads((tmp_path / "ngrams" / "_pruning.json").read_text())
    assert summary["orders"][str(order)]["distinct"] == sum(
        1 for g in reference(order) if len(g) == order
    )
    assert summary["continuation"] == [] and not (tmp_path / "ngrams" / "_continuation").exists()


def test_a_tiny_buffer_flushes_and_counts_stay_exact(tmp_path):
    texts = [f"{i % 7}あいう{i % 3}えお" * 3 for i in range(300)]
    assert run_counts(tmp_path, 5, buffer_mb=0.001, texts=texts) == reference(5, texts)


def test_pruned_tables_and_continuation_files(tmp_path):
    got = run_counts(tmp_path, 4, min_counts=(2,))
    want = {g: c for g, c in reference(4).items() if len(g) < 3 or c >= 2}
    assert got == want
    summary = json.loads((tmp_path / "ngrams" / "_pruning.json").read_text())
    assert summary["min_counts"] == [1, 1, 2, 2]
    assert summary["orders"]["4"]["kept"] == sum(1 for g in want if len(g) == 4)
    cont = pq.read_table(tmp_path / "ngrams" / "_continuation").to_pylist()
    assert len(summary["continuation"]) == 3
    rows = {tuple(r["ngram"]): r["continuation"] for r in cont if r["continuation"]}
    left = Counter(g[1:] for g in reference(4) if len(g) >= 2)
    assert rows == {g: left[g] for g in want if len(g) < 4 and g[0] != "<bos>"}
