"""Megatron `.bin`/`.idx`: read back by megatron-core's own IndexedDataset and by our reader,
byte-identical to what megatron-core's IndexedDatasetBuilder writes for the same documents."""

import hashlib

import numpy as np
import pytest
import torch
from megatron.core.datasets.indexed_dataset import IndexedDataset, IndexedDatasetBuilder

from beam_jobs.io.megatron import MegatronDataset, megatron_dtype, write_megatron


def documents(vocab_size: int, count: int = 50, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    docs = [
        rng.integers(3, vocab_size, size=int(n), dtype=np.int32)
        for n in rng.integers(0, 300, size=count)
    ]
    docs[3] = np.array([vocab_size - 1], dtype=np.int32)  # the largest id survives the dtype
    return docs


@pytest.mark.parametrize("vocab_size", [1000, 65499, 65500, 200_000])
def test_megatron_core_reads_our_files(tmp_path, vocab_size):
    docs = documents(vocab_size)
    prefix = str(tmp_path / "train-00000-of-00001")
    counts = write_megatron(prefix, docs, vocab_size, eos_id=2)
    digests = counts.pop("sha256")
    assert counts == {
        "documents": 50,
        "tokens": sum(len(d) + 1 for d in docs),
        "dtype": "uint16" if vocab_size < 65500 else "int32",
    }
    for ext, digest in digests.items():
        assert hashlib.sha256(open(prefix + ext, "rb").read()).hexdigest() == digest
    theirs = IndexedDataset(prefix)
    assert len(theirs) == len(docs)
    assert theirs.index.dtype == megatron_dtype(vocab_size)
    assert theirs.document_indices.tolist() == list(range(len(docs) + 1))
    ours = MegatronDataset(prefix)
    for i, doc in enumerate(docs):
        want = [*doc.tolist(), 2]
        assert theirs[i].tolist() == want
        assert ours[i].tolist() == want
        if len(want) >= 3:
            assert theirs.get(i, offset=1, length=2).tolist() == want[1:3]
    assert theirs.sequence_lengths.tolist() == [len(d) + 1 for d in docs]


@pytest.mark.parametrize("vocab_size", [1000, 200_000])
def test_files_equal_megatron_builders_bytes(tmp_path, vocab_size):
    docs = documents(vocab_size, seed=1)
    ours = str(tmp_path / "ours")
    write_megatron(ours, docs, vocab_size, eos_id=2)
    theirs = str(tmp_path / "theirs")
    builder = IndexedDatasetBuilder(theirs + ".bin", dtype=megatron_dtype(vocab_size).type)
    for doc in docs:  # preprocess_data.py --append-eod, one sentence per document
        builder.add_document(torch.tensor([*doc.tolist(), 2]), [len(doc) + 1])
    builder.finalize(theirs + ".idx")
    for ext in (".bin", ".idx"):
        assert open(ours + ext, "rb").read() == open(theirs + ext, "rb").read()


def test_deterministic_and_empty(tmp_path):
    docs = documents(5000, seed=2)
    write_megatron(str(tmp_path / "a"), docs, 5000, 2)
    write_megatron(str(tmp_path / "b"), docs, 5000, 2)
    for ext in (".bin", ".idx"):
        assert (tmp_path / f"a{ext}").read_bytes() == (tmp_path / f"b{ext}").read_bytes()
    assert write_megatron(str(tmp_path / "empty"), [], 5000, 2)["documents"] == 0
    # An empty .bin is a valid dataset, but numpy cannot mmap an empty file: megatron-core
    # opens it only with mmap=False (a writer should not hand Megatron empty shards).
    assert len(IndexedDataset(str(tmp_path / "empty"), mmap=False)) == 0
    assert len(MegatronDataset(str(tmp_path / "empty"))) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.bin",
        "a.idx",
        "b.bin",
        "b.idx",
        "empty.bin",
        "empty.idx",
    ]  # no temporary left


def test_out_of_vocabulary_ids_are_refused_before_writing(tmp_path):
    with pytest.raises(ValueError, match="outside 0..999"):
        write_megatron(str(tmp_path / "x"), [np.array([5, 1000])], 1000, 2)
    assert list(tmp_path.iterdir()) == []


def test_our_reader_refuses_other_files(tmp_path):
    (tmp_path / "x.idx").write_bytes(b"NOTMMIDX" + bytes(40))
    (tmp_path / "x.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="not a Megatron index"):
        MegatronDataset(str(tmp_path / "x"))
