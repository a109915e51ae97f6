"""The `input_ids` column of the document shards: each document's token ids as a Parquet list.

The ids are the text's (no `<bos>`/`<eos>`: `len(input_ids) == n_tokens`), as list<uint16>
when every id fits (vocabulary of at most 65,536) else list<uint32>. The column is built from
one flat array and its offsets, with no Python object per token.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from beam_jobs.io.token_arrays import flatten_documents


def input_ids_type(vocab_size: int) -> pa.DataType:
    return pa.list_(pa.uint16() if vocab_size <= 2**16 else pa.uint32())


def input_ids_array(docs: Sequence[np.ndarray], vocab_size: int) -> pa.ListArray:
    """One list of ids per document, in order."""
    value_type = input_ids_type(vocab_size).value_type
    ids, sizes = flatten_documents(docs, vocab_size)
    offsets = np.zeros(len(docs) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    if offsets[-1] >= 2**31:
        raise ValueError("more than 2**31 ids in one table: write smaller row groups")
    values = pa.array(ids.astype(value_type.to_pandas_dtype(), copy=False), type=value_type)
    return pa.ListArray.from_arrays(
        pa.array(offsets.astype(np.int32)), values, type=input_ids_type(vocab_size)
    )


def with_input_ids(table: pa.Table, docs: Sequence[np.ndarray], vocab_size: int) -> pa.Table:
    """`table` (one row per document, same order) with the `input_ids` column appended."""
    if len(docs) != table.num_rows:
        raise ValueError(f"{len(docs)} id lists for {table.num_rows} rows")
    return table.append_column(
        pa.field("input_ids", input_ids_type(vocab_size)), input_ids_array(docs, vocab_size)
    )
