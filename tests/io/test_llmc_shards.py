"""llm.c token shards, read back with numpy exactly as llm.c's loaders read them."""

import hashlib

import numpy as np
import pytest

from beam_jobs.io.llmc import VocabularyTooLarge, check_vocab, read_llmc, write_llmc
from tests.token_readers import dataloader_h_checks, llmc_load_data_shard


def documents(vocab_size: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    docs = [
        rng.integers(3, vocab_size, size=int(n), dtype=np.int32)
        for n in rng.integers(0, 200, size=40)
    ]
    docs[0] = np.array([vocab_size - 1, 3], dtype=np.int32)
    return docs


@pytest.mark.parametrize("vocab_size", [1000, 50257, 65536])
def test_llmc_loaders_read_our_shard(tmp_path, vocab_size):
    docs = documents(vocab_size)
    path = str(tmp_path / "train_000000.bin")
    counts = write_llmc(path, docs, vocab_size, eot_id=2)
    tokens = llmc_load_data_shard(path)
    want = np.concatenate([np.concatenate([[2], d]) for d in docs])
    assert tokens.tolist() == want.tolist()
    assert counts == {
        "documents": 40,
        "tokens": len(want),
        "sha256": hashlib.sha256(open(path, "rb").read()).hexdigest(),
    }
    assert dataloader_h_checks(path) == len(want)
    assert read_llmc(path).tolist() == want.tolist()
    # Documents are recovered by splitting at the end-of-text ids (none inside a document).
    starts = np.flatnonzero(tokens == 2)
    assert [tokens[a + 1 : b].tolist() for a, b in zip(starts, [*starts[1:], len(tokens)])] == [
        d.tolist() for d in docs
    ]


def test_shards_are_deterministic(tmp_path):
    docs = documents(3000, seed=3)
    write_llmc(str(tmp_path / "a.bin"), docs, 3000, 2)
    write_llmc(str(tmp_path / "b.bin"), docs, 3000, 2)
    assert (tmp_path / "a.bin").read_bytes() == (tmp_path / "b.bin").read_bytes()


def test_a_vocabulary_beyond_uint16_is_refused_and_nothing_is_written(tmp_path):
    with pytest.raises(VocabularyTooLarge) as error:
        write_llmc(str(tmp_path / "train_000000.bin"), documents(1000), 65537, eot_id=2)
    assert "65537" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(VocabularyTooLarge):
        check_vocab(100_000)
    check_vocab(65536)
    assert list(tmp_path.iterdir()) == []


def test_bad_ids_and_bad_files(tmp_path):
    with pytest.raises(ValueError, match="outside"):
        write_llmc(str(tmp_path / "x.bin"), [np.array([1000])], 1000, 2)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "y.bin").write_bytes(bytes(2048))
    with pytest.raises(ValueError, match="bad magic"):
        read_llmc(str(tmp_path / "y.bin"))
    assert write_llmc(str(tmp_path / "empty.bin"), [], 1000, 2)["tokens"] == 0
    assert len(llmc_load_data_shard(str(tmp_path / "empty.bin"))) == 0  # llm.c's C loader
    # asserts ntok > 0: a writer should not hand llm.c empty shards
