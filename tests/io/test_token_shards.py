"""The shard writer's token step: a part's ids, n_tokens and input_ids, its Megatron and llm.c
files, and the train split's id counts; and vocab.json of a model's ids."""

import gzip
import json

import numpy as np
import pyarrow as pa
import pytest
from apache_beam.pvalue import TaggedOutput
from conftest import SAMPLE

from beam_jobs.counts.id_vocab import SumIdCounts, id_vocab
from beam_jobs.io.llmc import read_llmc
from beam_jobs.io.megatron import MegatronDataset
from beam_jobs.io.token_shards import ID_COUNTS, TOKEN_FILES, IdCounts, TokenShards
from beam_jobs.records import DOC_SCHEMA
from beam_jobs.text.normalize import normalize_text
from beam_jobs.tokens.train import TrainConfig, train_tokenizer


@pytest.fixture(scope="module")
def texts() -> list[str]:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as handle:
        return [normalize_text(json.loads(line)["text"]) for line in handle][:60]


@pytest.fixture(scope="module")
def tokenizer(texts):
    return train_tokenizer(texts, TrainConfig(vocab_size=1500, num_threads=1))


def part_of(texts) -> pa.Table:
    return pa.table(
        {
            "id": [f"d{i:03d}" for i in range(len(texts))],
            "text": texts,
            "n_tokens": [0] * len(texts),
            "n_chars": [len(t) for t in texts],
            "source": ["s"] * len(texts),
        },
        schema=DOC_SCHEMA,
    )


def outputs_by_tag(outputs) -> dict:
    by_tag: dict = {}
    for out in outputs:
        assert isinstance(out, TaggedOutput)
        by_tag.setdefault(out.tag, []).append(out.value)
    return by_tag


def test_a_train_part_gets_ids_files_and_counts(tmp_path, texts, tokenizer):
    writer = TokenShards(str(tmp_path), ("megatron", "llmc", "parquet"), num_shards=4)
    part, outputs = writer.process("train", 2, part_of(texts), tokenizer)
    ids = tokenizer.encode_batch(texts)
    assert part["n_tokens"].to_pylist() == [len(i) for i in ids]
    assert part["input_ids"].to_pylist() == [i.tolist() for i in ids]
    assert part.schema.field("input_ids").type == pa.list_(pa.uint16())
    by_tag = outputs_by_tag(outputs)
    megatron, llmc = by_tag[TOKEN_FILES]
    assert megatron.path == "tokens/megatron/train-00002-of-00004" and llmc.shard == 2
    assert llmc.path == "tokens/llmc/train_000002.bin"
    ours = MegatronDataset(str(tmp_path / megatron.path))
    assert [ours[k].tolist() for k in range(len(ours))] == [[*i.tolist(), 2] for i in ids]
    assert (
        read_llmc(str(tmp_path / llmc.path)).tolist()
        == np.concatenate([np.concatenate([[2], i]) for i in ids]).tolist()
    )
    assert megatron.tokens == llmc.tokens == sum(map(len, ids)) + len(ids)
    (counts,) = by_tag[ID_COUNTS]
    assert counts.documents == len(texts)
    assert counts.counts.tolist() == np.bincount(np.concatenate(ids), minlength=1500).tolist()


def test_an_empty_or_val_part_writes_no_token_files_or_counts(tmp_path, texts, tokenizer):
    writer = TokenShards(str(tmp_path), ("megatron", "llmc"), num_shards=1)
    part, outputs = writer.process("val", 0, part_of(texts[:3]), tokenizer)
    assert "input_ids" not in part.column_names
    assert set(outputs_by_tag(outputs)) == {TOKEN_FILES}
    part, outputs = writer.process("train", 0, part_of([]), tokenizer)
    assert part.num_rows == 0 and outputs_by_tag(outputs).keys() == {ID_COUNTS}
    assert not (tmp_path / "tokens" / "llmc" / "train_000000.bin").exists()


def test_vocab_json_of_a_models_ids(tokenizer):
    fn = SumIdCounts()
    parts = [IdCounts(np.arange(1500), 3), IdCounts(np.ones(1500, np.int64), 2)]
    acc = fn.merge_accumulators([fn.add_input(fn.create_accumulator(), p) for p in parts])
    total = fn.extract_output(acc)
    vocab = id_vocab(tokenizer.pieces(), total.counts, total.documents)
    assert vocab["tokens"][:3] == ["<unk>", "<bos>", "<eos>"]
    assert vocab["tokens"][3:] == tokenizer.pieces()[3:] and vocab["order"] == "id"
    assert vocab["counts"][:3] == [1, 5, 5] and vocab["counts"][3:] == list(range(4, 1501))
    assert vocab["total_tokens"] == int(total.counts.sum()) and vocab["unk_tokens"] == 1
    with pytest.raises(ValueError, match="counts for a vocabulary"):
        id_vocab(tokenizer.pieces(), np.zeros(5), 0)
