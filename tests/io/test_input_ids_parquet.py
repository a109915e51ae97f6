"""The `input_ids` column: list<uint16> or list<uint32> by vocabulary size, readable by
Hugging Face datasets, pandas, polars and DuckDB, and byte-identical across writes."""

import datasets
import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from beam_jobs.io.input_ids import input_ids_array, input_ids_type, with_input_ids
from beam_jobs.io.parquet import write_table
from beam_jobs.records import DOC_SCHEMA


def shard(tmp_path, vocab_size: int, name: str = "train-00000-of-00001.parquet"):
    rng = np.random.default_rng(vocab_size)
    docs = [
        rng.integers(0, vocab_size, size=int(n), dtype=np.int32)
        for n in rng.integers(0, 50, size=30)
    ]
    docs[1] = np.array([vocab_size - 1], dtype=np.int32)
    rows = {
        "id": [f"d{i:02d}" for i in range(30)],
        "text": ["x" * len(d) for d in docs],
        "n_tokens": [len(d) for d in docs],
        "n_chars": [len(d) for d in docs],
        "source": ["s"] * 30,
    }
    table = with_input_ids(pa.Table.from_pydict(rows, schema=DOC_SCHEMA), docs, vocab_size)
    path = tmp_path / name
    write_table(str(path), table, row_group_size=8)
    return path, docs


@pytest.mark.parametrize(
    "vocab_size,value_type", [(32000, pa.uint16()), (65536, pa.uint16()), (65537, pa.uint32())]
)
def test_readers_get_the_ids(tmp_path, vocab_size, value_type):
    path, docs = shard(tmp_path, vocab_size)
    want = [d.tolist() for d in docs]
    assert pq.read_schema(path).field("input_ids").type == pa.list_(value_type)
    assert pq.read_table(path).column("input_ids").to_pylist() == want
    ds = datasets.load_dataset(
        "parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf_cache")
    )
    assert ds["input_ids"][:] == want and ds["id"][:3] == ["d00", "d01", "d02"]
    assert ds.with_format("numpy")[1]["input_ids"].tolist() == want[1]
    frame = pd.read_parquet(path)
    assert [list(v) for v in frame["input_ids"]] == want
    assert pl.read_parquet(path)["input_ids"].to_list() == want
    got = duckdb.sql(f"SELECT input_ids FROM read_parquet('{path}') ORDER BY id").fetchall()
    assert [list(r[0]) for r in got] == want
    assert (frame["n_tokens"] == [len(d) for d in docs]).all()


def test_column_is_deterministic_and_checked(tmp_path):
    a, _ = shard(tmp_path, 1000, "a.parquet")
    b, _ = shard(tmp_path, 1000, "b.parquet")
    assert a.read_bytes() == b.read_bytes()
    with pytest.raises(ValueError, match="outside"):
        input_ids_array([np.array([1000])], 1000)
    with pytest.raises(ValueError, match="2 id lists for 1 rows"):
        with_input_ids(pa.table({"id": ["x"]}), [np.array([1]), np.array([2])], 10)
    assert input_ids_array([], 10).type == input_ids_type(10)
    assert input_ids_array([np.array([], dtype=np.int32)], 10).to_pylist() == [[]]
