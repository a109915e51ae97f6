"""Documents of token ids as one flat array: what every token-shard writer starts from."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def flatten_documents(
    docs: Sequence[np.ndarray], vocab_size: int, delimiter: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(all ids concatenated, each document's length), refusing ids outside the vocabulary
    (a cast to uint16 would wrap them silently), and `delimiter` too when one is given."""
    sizes = np.fromiter((len(d) for d in docs), dtype=np.int64, count=len(docs))
    ids = np.concatenate(docs) if len(docs) else np.empty(0, dtype=np.int64)
    if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(f"a token id outside 0..{vocab_size - 1}")
    if delimiter is not None and not 0 <= delimiter < vocab_size:
        raise ValueError(f"the end-of-text id {delimiter} is outside 0..{vocab_size - 1}")
    return ids, sizes
