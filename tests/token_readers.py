"""Readers of the token shards written the way the trainers' own code reads them (shared by
tests/io/ and tests/pipeline/)."""

import numpy as np


def llmc_load_data_shard(filename: str) -> np.ndarray:
    """llm.c's train_gpt2.py `_load_data_shard`, step for step."""
    with open(filename, "rb") as f:
        header = np.frombuffer(f.read(256 * 4), dtype=np.int32)
        assert header[0] == 20240520, "magic number mismatch in the data .bin file"
        assert header[1] == 1, "unsupported version"
        ntok = header[2]
        tokens = np.frombuffer(f.read(), dtype=np.uint16)
    assert len(tokens) == ntok, "number of tokens read does not match header?"
    return tokens


def dataloader_h_checks(filename: str) -> int:
    """llmc/dataloader.h `dataloader_load_shard_`: header, ntok > 0, exact file size."""
    raw = open(filename, "rb").read()
    header = np.frombuffer(raw[: 256 * 4], dtype=np.int32)
    assert header[0] == 20240520 and header[1] == 1
    ntok = int(header[2])
    assert ntok > 0
    assert len(raw) == 256 * 4 + ntok * 2
    return ntok
