"""lm.train refuses data that disagree with their manifest, with one line and exit code 2:
a shard replaced by another valid one, a shard with other bytes, a truncated shard, a
tokenizer this version does not know (issue 18, items 7 and 12)."""

import hashlib
import json
import shutil

import pytest
from lm_fixtures import small_data_dir

from lm.train import main


def run_train(data, tmp_path, capsys) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main(
        [
            "--data",
            str(data),
            "--out",
            str(tmp_path / "run"),
            "--max-steps",
            "1",
            "--hidden",
            "8",
            "--emb-dim",
            "4",
            "--no-progress",
            "--no-plots",
            "--no-baselines",
            "--batch-size",
            "2",
            "--block-size",
            "8",
        ]
    )
    return code, capsys.readouterr().err.strip().splitlines()


def manifest_of(data) -> dict:
    return json.loads((data / "manifest.json").read_text())


def write_manifest(data, manifest: dict) -> None:
    (data / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False))


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "data"
    small_data_dir(path)
    manifest = manifest_of(path)
    for split in ("train", "val"):  # as the pipeline writes them
        for shard in manifest["splits"][split]["shards"]:
            shard["sha256"] = hashlib.sha256((path / shard["path"]).read_bytes()).hexdigest()
    write_manifest(path, manifest)
    return path


def test_good_data_trains(data, tmp_path, capsys):
    assert run_train(data, tmp_path, capsys)[0] == 0


def test_a_shard_replaced_by_another_valid_one(data, tmp_path, capsys):
    shards = manifest_of(data)["splits"]["train"]["shards"]
    shutil.copy(data / shards[1]["path"], data / shards[0]["path"])
    code, err = run_train(data, tmp_path, capsys)
    assert code == 2 and len(err) == 1, err
    assert "rows where the manifest says" in err[0] or "sha256" in err[0]


def test_a_shard_with_the_same_rows_but_other_bytes(data, tmp_path, capsys):
    manifest = manifest_of(data)
    shard = manifest["splits"]["val"]["shards"][0]
    shard["sha256"] = "0" * 64
    write_manifest(data, manifest)
    code, err = run_train(data, tmp_path, capsys)
    assert code == 2 and err == [
        f"error: {data / shard['path']}: its bytes differ from the "
        "manifest's sha256; the shard is not the one the pipeline "
        "wrote"
    ]


def test_a_truncated_shard(data, tmp_path, capsys):
    path = data / manifest_of(data)["splits"]["train"]["shards"][0]["path"]
    path.write_bytes(path.read_bytes()[:100])
    code, err = run_train(data, tmp_path, capsys)
    assert code == 2 and len(err) == 1 and "unreadable shard, truncated or not Parquet" in err[0]


def test_an_unknown_tokenizer(data, tmp_path, capsys):
    manifest = manifest_of(data)
    manifest["tokenizer"] = {"name": "wordpiece-9000"}
    write_manifest(data, manifest)
    code, err = run_train(data, tmp_path, capsys)
    assert code == 2 and len(err) == 1
    assert "tokenizer 'wordpiece-9000' is not one this version of lm knows" in err[0]
