"""llm.c's token shards (`dev/data/data_common.py` `write_datafile`, GPT-2 layout).

A shard is 256 int32 (little-endian) header values, magic 20240520, version 1, the token
count, zeros; then that many uint16 tokens. Each document is preceded by the end-of-text id
(llm.c's `tokenize` starts every document with `<|endoftext|>`), so documents are delimited
the way llm.c's GPT-2 data is. llm.c reads uint16 only: a vocabulary that does not fit is
refused before anything is written. Its loader also asserts a shard holds at least one token
(and a batch's worth to train on), which a writer of empty shards must keep in mind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from apache_beam.io.filesystems import FileSystems

from beam_jobs.io.fs import atomic_create
from beam_jobs.io.token_arrays import flatten_documents

MAGIC, VERSION, HEADER_INTS = 20240520, 1, 256
MAX_TOKENS = 2**31 - 1  # the count is an int32


class VocabularyTooLarge(ValueError):
    """The vocabulary has ids that uint16 cannot hold."""


def check_vocab(vocab_size: int) -> None:
    """Refuse a vocabulary llm.c's uint16 shards cannot hold (call before any work)."""
    if vocab_size > 2**16:
        raise VocabularyTooLarge(
            f"the llmc token format stores uint16 ids, but the vocabulary has {vocab_size} "
            "(more than 65,536); lower --vocab-size or drop llmc from --token-formats"
        )


def shard_bytes(docs: Sequence[np.ndarray], vocab_size: int, eot_id: int) -> bytes:
    """The shard holding `docs` (id arrays, in order), each preceded by `eot_id`."""
    check_vocab(vocab_size)
    ids, sizes = flatten_documents(docs, vocab_size, eot_id)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if len(docs) else sizes
    tokens = np.insert(ids.astype("<u2"), starts, eot_id)
    if len(tokens) > MAX_TOKENS:
        raise ValueError(f"{len(tokens)} tokens: an llmc shard holds at most {MAX_TOKENS}")
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[:3] = MAGIC, VERSION, len(tokens)
    return header.tobytes() + tokens.tobytes()


def write_llmc(path: str, docs: Sequence[np.ndarray], vocab_size: int, eot_id: int) -> dict:
    """Write the shard at `path` (whole, or not at all); returns its counts and sha256."""
    data = shard_bytes(docs, vocab_size, eot_id)
    with atomic_create(path) as handle:
        handle.write(data)
    return {
        "documents": len(docs),
        "tokens": (len(data) - 4 * HEADER_INTS) // 2,
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def read_llmc(path: str) -> np.ndarray:
    """The tokens of a shard, with llm.c's checks (magic, version, count against size)."""
    with FileSystems.open(path) as handle:
        raw = handle.read()
    header = np.frombuffer(raw[: 4 * HEADER_INTS], dtype="<i4")
    if len(header) != HEADER_INTS or header[0] != MAGIC:
        raise ValueError(f"{path}: not an llm.c shard (bad magic)")
    if header[1] != VERSION:
        raise ValueError(f"{path}: llm.c shard version {header[1]}, not {VERSION}")
    tokens = np.frombuffer(raw, dtype="<u2", offset=4 * HEADER_INTS)
    if len(tokens) != header[2]:
        raise ValueError(
            f"{path}: the header says {header[2]} tokens, the file holds {len(tokens)}"
        )
    return tokens
