"""Contiguous lanes for a carried hidden state: row b of a batch continues row b of the batch
before, and every document of the epoch goes into the lanes."""

import numpy as np

from lm.data import IGNORE_INDEX, Lanes, TrainStream, load_manifest, load_vocab
from tests.lm_fixtures import random_texts, write_data_dir


def test_rows_continue_the_rows_before(tmp_path):
    root = write_data_dir(tmp_path / "d", random_texts(300, seed=3), random_texts(5, seed=4))
    manifest = load_manifest(root)
    vocab = load_vocab(root, manifest)
    stream = TrainStream(root, manifest, vocab, 4, 8, lanes=True)
    batches = list(stream.epoch_batches(stream.units(), 0, 0, 1))
    assert len(batches) > 10
    for (_, y0), (x1, _) in zip(batches, batches[1:]):
        last = np.where(y0[:, -1] == IGNORE_INDEX, vocab.bos, y0[:, -1])
        assert np.array_equal(x1[:, 0], last)
    # nearly every token is a target once: at most a context per lane is left over
    targets = sum(y.size for _, y in batches)
    total = sum(len(vocab.encode_document(t)) for t in random_texts(300, seed=3))
    assert total - 4 * (8 + 1) <= targets <= total


def test_lanes_stay_balanced():
    lanes = Lanes(3, 4, lambda w: w)
    docs = [np.arange(n) for n in (10, 3, 3, 3, 7, 2, 9)]
    out = list(lanes.add(docs))
    assert all(w.shape == (3, 5) for w in out)
    assert lanes.sizes.max() - lanes.sizes.min() <= 10
