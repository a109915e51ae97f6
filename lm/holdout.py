"""A slice of the train split that no model of the run learns from: the GRU's training stream
skips it and the Kneser-Ney model it is fitted against has its n-grams subtracted, so a weight
fitted on it (`lm.interpolate`) is fitted on unseen text, and never on validation text.

The slice is the first rows of the last row groups of the last train shards, about
`max_tokens` predictions and at most 1/20 of the split's, as `{(shard, row group): rows}`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow.parquet as pq

from lm.data import Vocab, shard_paths

MAX_SHARE = 20  # at most 1/20 of the train split is held out


def holdout_rows(data_dir: str, manifest: dict, max_tokens: int) -> dict[tuple[int, int], int]:
    """{(shard, row group): rows held out from the group's start}; {} for max_tokens 0 or a
    split too small to spare a document."""
    paths = shard_paths(data_dir, manifest, "train")
    budget = min(max_tokens, int(manifest["splits"]["train"].get("tokens", 0)) // MAX_SHARE)
    out: dict[tuple[int, int], int] = {}
    for s in reversed(range(len(paths))):
        pf = pq.ParquetFile(paths[s])
        for g in reversed(range(pf.metadata.num_row_groups)):
            if budget <= 0:
                return out
            chars = pf.read_row_group(g, columns=["n_chars"]).column(0).to_numpy()
            # a document of k tokens makes k + 1 predictions
            taken = int(np.searchsorted(np.cumsum(chars + 1), budget) + 1)
            taken = min(taken, len(chars))
            if taken:
                out[(s, g)] = taken
                budget -= int((chars[:taken] + 1).sum())
    return out


def iter_holdout_documents(
    data_dir: str, manifest: dict, vocab: Vocab, rows: dict[tuple[int, int], int]
) -> Iterator[np.ndarray]:
    """The held-out documents as `<bos> .. <eos>` ids, in (shard, row group, row) order."""
    paths = shard_paths(data_dir, manifest, "train")
    for (s, g), k in sorted(rows.items()):
        texts = pq.ParquetFile(paths[s]).read_row_group(g, columns=["text"]).column(0)
        for text in texts.slice(0, k).to_pylist():
            yield vocab.encode_document(text)
