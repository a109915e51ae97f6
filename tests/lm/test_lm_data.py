"""lm.data: manifest checks, vocabulary mapping, streaming readers and the training stream."""

import json
import os

import numpy as np
import pytest
from torch.utils.data import DataLoader

from lm.data import (
    IGNORE_INDEX,
    DataDirError,
    TrainStream,
    in_worker_order,
    iter_documents,
    load_manifest,
    load_vocab,
)
from lm.evaluate import lane_batches
from tests.lm_fixtures import small_data_dir


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return small_data_dir(tmp_path_factory.mktemp("data"), min_count=2, row_group_size=3)


def test_refuses_missing_incomplete_and_unknown_schema(tmp_path, root):
    with pytest.raises(DataDirError, match="no manifest.json"):
        load_manifest(str(tmp_path))
    for override, message in (
        ({"complete": False}, "complete"),
        ({"schema_version": 2}, "schema_version 2"),
        ({"vocab": "nope.json"}, "nope.json"),
    ):
        d = small_data_dir(tmp_path / message.replace(" ", "_"), manifest_overrides=override)
        with pytest.raises(DataDirError, match=message):
            load_manifest(d)
    d = small_data_dir(tmp_path / "nokey")
    manifest = json.load(open(os.path.join(d, "manifest.json")))
    del manifest["splits"]["val"]
    json.dump(manifest, open(os.path.join(d, "manifest.json"), "w"))
    with pytest.raises(DataDirError, match="splits.val"):
        load_manifest(d)


def test_cli_refuses_with_a_clear_message(tmp_path, capsys):
    from lm.ngram import main

    assert main(["--data", str(tmp_path)]) == 2
    assert "no manifest.json" in capsys.readouterr().err


def test_vocab_maps_unknown_tokens_to_unk(root):
    manifest = load_manifest(root)
    vocab = load_vocab(root, manifest)
    ids = vocab.encode("の猫")  # 猫 only appears in val
    assert ids.tolist() == [vocab.index["の"], vocab.unk]
    assert vocab.decode(ids, unk_placeholder="?") == "の?"
    doc = vocab.encode_document("の")
    assert doc.tolist() == [vocab.bos, vocab.index["の"], vocab.eos]


def test_validation_loader_yields_every_token_exactly_once(root):
    manifest = load_manifest(root)
    vocab = load_vocab(root, manifest)
    docs = list(iter_documents(root, manifest, vocab, "val"))
    assert len(docs) == manifest["splits"]["val"]["rows"]
    assert sum(len(d) - 2 for d in docs) == manifest["splits"]["val"]["tokens"]
    for lanes, block in ((1, 5), (4, 3), (7, 64)):
        seen = [[] for _ in docs]
        order = iter(range(len(docs)))
        lane_doc = {}
        for rows, x, y, fresh in lane_batches(docs, lanes, block):
            for r, i in enumerate(rows):
                if fresh[r]:
                    lane_doc[i] = next(order)
                targets = y[r][y[r] != IGNORE_INDEX]
                assert len(targets)
                seen[lane_doc[i]].extend(targets.tolist())
                assert (x[r][: len(targets)][1:] == targets[:-1]).all()
        assert [s for s in seen] == [d[1:].tolist() for d in docs]


def collect(stream, workers, n, first=0):
    loader = DataLoader(stream, batch_size=None, num_workers=workers)
    out = []
    for batch in in_worker_order(loader, stream.active_workers(workers), first):
        out.append(batch)
        if len(out) == n:
            break
    return out


def test_train_stream_covers_each_token_once_per_epoch(root):
    manifest = load_manifest(root)
    vocab = load_vocab(root, manifest)
    B, T = 2, 4
    stream = TrainStream(root, manifest, vocab, B, T, seed=1, pool_size=4)
    batches = list(stream.epoch_batches(stream.units(), 0, 0, 1))
    total_targets = sum(len(d) - 1 for d in iter_documents(root, manifest, vocab, "train"))
    # consecutive documents are joined, so targets = all tokens after the first <bos>
    stream_len = sum(len(d) for d in iter_documents(root, manifest, vocab, "train"))
    got = sum(int((y != IGNORE_INDEX).sum()) + int((y == IGNORE_INDEX).sum()) for _, y in batches)
    assert stream_len - 1 - got < B * T + T + 1  # only the incomplete last batch is dropped
    assert total_targets > 0
    ys = np.concatenate([y.ravel() for _, y in batches])
    assert vocab.bos not in ys  # <bos> is never a target


def test_train_stream_is_seeded_split_across_workers_and_resumable(root):
    manifest = load_manifest(root)
    vocab = load_vocab(root, manifest)

    def make(seed=0, start=None):
        return TrainStream(root, manifest, vocab, 2, 4, seed=seed, pool_size=4, start=start)

    a = collect(make(), 2, 12)
    b = collect(make(), 2, 12)
    assert all((p["x"] == q["x"]).all() for p, q in zip(a, b))
    assert {int(p["worker"]) for p in a} == {0, 1}
    c = collect(make(seed=5), 2, 12)
    assert any((p["x"] != q["x"]).any() for p, q in zip(a, c))
    # resume after the first 5 consumed batches
    position = {}
    for p in a[:5]:
        position[int(p["worker"])] = (int(p["epoch"]), int(p["index"]) + 1)
    resumed = collect(make(start=position), 2, 7, first=int(a[4]["worker"]) + 1)
    assert all(
        (p["x"] == q["x"]).all() and (p["y"] == q["y"]).all() for p, q in zip(a[5:], resumed)
    )
