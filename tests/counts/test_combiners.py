"""The vocabulary and n-gram combiners equal a Counter over the same texts."""

import json
from collections import Counter

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_jobs.counts.combiners import BuildVocab, CountNgrams
from beam_jobs.counts.counting import ngrams_of


def test_ngram_counts_and_vocab_equal_counter(tmp_path):
    texts = ["あいうあい", "ab\nあい", "", "𠮷🙂あ"]
    for tokenizer_path, order in (("packed", 3), ("generic", 4)):
        out_dir = tmp_path / tokenizer_path
        with TestPipeline(runner="FnApiRunner") as p:
            texts_pc = p | beam.Create(texts)
            infos = texts_pc | CountNgrams(str(out_dir), "char", order, num_shards=3)
            vocab = texts_pc | BuildVocab(str(out_dir), "char", 1, 0)
            assert_that(infos | beam.Map(lambda i: i.shard), equal_to([0, 1, 2]),
                        label="every shard written")
            assert_that(vocab | beam.Map(lambda v: v["total_tokens"]),
                        equal_to([sum(map(len, texts))]), label="vocab")
        table = pq.read_table(out_dir / "ngrams").to_pylist()
        got = Counter({tuple(r["ngram"]): r["count"] for r in table})
        want = Counter()
        for text in texts:
            want.update(ngrams_of(list(text), order))
        assert got == want
        vocab = json.loads((out_dir / "vocab.json").read_text())
        assert dict(zip(vocab["tokens"][3:], vocab["counts"][3:])) == Counter("".join(texts))
