"""Megatron-LM's indexed dataset (`PREFIX.bin` + `PREFIX.idx`), written and read with numpy.

Layout (megatron/core/datasets/indexed_dataset.py, `_IndexWriter` / `_IndexReader`):
* `.bin`: every sequence's token ids back to back, in the index's dtype, nothing else.
* `.idx`, little-endian: `b"MMIDIDX\\x00\\x00"`; version (uint64, 1); dtype code (uint8: 1 uint8,
  2 int8, 3 int16, 4 int32, 5 int64, 6 float64, 7 float32, 8 uint16); the sequence count
  (uint64); the document-index count (uint64); then the sequence lengths (int32 each), the
  sequences' byte offsets in `.bin` (int64 each), and the document indices (int64 each: 0,
  then the sequence index where each document ends, so one more than there are documents).

Here one document is one sequence, `<eos>` appended (Megatron's `preprocess_data.py
--append-eod` without sentence splitting), in uint16 below 65,500 ids else int32
(Megatron's `DType.optimal_dtype`). Both files are written whole under temporary names and
renamed, `.bin` first: the `.idx` exists only once its `.bin` is complete.

A shard with no documents is a valid pair (an empty `.bin`), but megatron-core's default
reader mmaps the `.bin` and numpy cannot mmap an empty file: it opens only with `mmap=False`.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

import numpy as np
from apache_beam.io.filesystems import FileSystems

from beam_jobs.io.fs import atomic_create
from beam_jobs.io.token_arrays import flatten_documents

INDEX_HEADER = b"MMIDIDX\x00\x00"
INDEX_VERSION = 1
DTYPE_CODES = {
    np.dtype(np.uint8): 1,
    np.dtype(np.int8): 2,
    np.dtype(np.int16): 3,
    np.dtype(np.int32): 4,
    np.dtype(np.int64): 5,
    np.dtype(np.float64): 6,
    np.dtype(np.float32): 7,
    np.dtype(np.uint16): 8,
}
CODE_DTYPES = {code: dtype for dtype, code in DTYPE_CODES.items()}


def megatron_dtype(vocab_size: int) -> np.dtype:
    """Megatron's choice for a vocabulary of `vocab_size` ids."""
    return np.dtype(np.uint16 if vocab_size < 65500 else np.int32)


def documents_with_eos(
    docs: Sequence[np.ndarray], eos_id: int, vocab_size: int, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray]:
    """All documents, each followed by `eos_id`, as one `dtype` array; and each one's length
    (ids outside the vocabulary are refused, not wrapped around by the cast)."""
    ids, sizes = flatten_documents(docs, vocab_size, eos_id)
    flat = np.insert(ids.astype(dtype, copy=False), np.cumsum(sizes), eos_id)
    return flat, sizes + 1


def index_bytes(lengths: np.ndarray, dtype: np.dtype) -> bytes:
    """The `.idx` file for one sequence per document of these lengths."""
    dtype = np.dtype(dtype)
    count = len(lengths)
    pointers = np.zeros(count, dtype=np.int64)
    if count:
        np.cumsum(lengths[:-1] * dtype.itemsize, out=pointers[1:])
    doc_index = np.arange(count + 1, dtype=np.int64)
    head = INDEX_HEADER + struct.pack(
        "<QBQQ", INDEX_VERSION, DTYPE_CODES[dtype], count, len(doc_index)
    )
    return b"".join(
        [
            head,
            lengths.astype("<i4").tobytes(),
            pointers.astype("<i8").tobytes(),
            doc_index.astype("<i8").tobytes(),
        ]
    )


def write_megatron(prefix: str, docs: Sequence[np.ndarray], vocab_size: int, eos_id: int) -> dict:
    """`prefix.bin` and `prefix.idx` for `docs` (id arrays, in order); returns their counts,
    dtype and each file's sha256."""
    dtype = megatron_dtype(vocab_size)
    flat, lengths = documents_with_eos(docs, eos_id, vocab_size, dtype)
    data = flat.astype(dtype.newbyteorder("<"), copy=False).tobytes()
    index = index_bytes(lengths, dtype)
    with atomic_create(prefix + ".bin") as handle:
        handle.write(data)
    with atomic_create(prefix + ".idx") as handle:
        handle.write(index)
    return {
        "documents": len(docs),
        "tokens": int(lengths.sum()),
        "dtype": dtype.name,
        "sha256": {
            ".bin": hashlib.sha256(data).hexdigest(),
            ".idx": hashlib.sha256(index).hexdigest(),
        },
    }


class MegatronDataset:
    """Our reader of a `.bin`/`.idx` pair: `ds[i]` is document i's ids (with its `<eos>`)."""

    def __init__(self, prefix: str):
        with FileSystems.open(prefix + ".idx") as handle:
            raw = handle.read()
        fixed = len(INDEX_HEADER) + struct.calcsize("<QBQQ")
        if raw[: len(INDEX_HEADER)] != INDEX_HEADER or len(raw) < fixed:
            raise ValueError(f"{prefix}.idx: not a Megatron index (bad header)")
        version, code, count, doc_count = struct.unpack("<QBQQ", raw[len(INDEX_HEADER) : fixed])
        if version != INDEX_VERSION or code not in CODE_DTYPES:
            raise ValueError(f"{prefix}.idx: version {version}, dtype code {code}: unknown")
        self.dtype = CODE_DTYPES[code]
        self.lengths = np.frombuffer(raw, "<i4", count, fixed)
        self.pointers = np.frombuffer(raw, "<i8", count, fixed + 4 * count)
        self.document_indices = np.frombuffer(raw, "<i8", doc_count, fixed + 12 * count)
        with FileSystems.open(prefix + ".bin") as handle:
            self.tokens = np.frombuffer(handle.read(), self.dtype.newbyteorder("<"))
        if self.tokens.nbytes != int(self.lengths.astype(np.int64).sum()) * self.dtype.itemsize:
            raise ValueError(f"{prefix}.bin: size does not match its index")

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> np.ndarray:
        start = int(self.pointers[i]) // self.dtype.itemsize
        return self.tokens[start : start + int(self.lengths[i])]
