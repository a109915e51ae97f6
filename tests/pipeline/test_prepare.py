"""End to end: the whole pipeline on a slice of the shared Japanese corpora."""

import gzip
import hashlib
import json
import logging
from collections import Counter

import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import StandardOptions

from beam_jobs.counts.counting import ngrams_of
from beam_jobs.prepare import main, parse_options, run

NEAR: list[str] = []  # the default pipeline, near-dedup included


def prepare(input_dir, out_dir, *extra):
    return run(
        [
            "--input",
            str(input_dir / "*"),
            "--output",
            str(out_dir),
            "--runner",
            "FnApiRunner",
            "--num-shards",
            "3",
            "--val-fraction",
            "0.2",
            *NEAR,
            *extra,
        ]
    )


def shard_digests(out_dir) -> dict:
    return {
        str(p.relative_to(out_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for sub in ("train", "val", "ngrams", "duplicates", "rejected")
        for p in sorted((out_dir / sub).glob("*.parquet"))
    } | {"vocab.json": hashlib.sha256((out_dir / "vocab.json").read_bytes()).hexdigest()}


@pytest.fixture(scope="module")
def prepared(ja_slice_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    manifest = prepare(ja_slice_dir, out)
    return out, manifest


def test_counts_identity_and_kept_equals_shard_rows(prepared, ja_slice_dir):
    out, manifest = prepared
    stats = json.loads((out / "stats.json").read_text())
    lines = sum(
        len((gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()).splitlines())
        for p in ja_slice_dir.iterdir()
    )
    assert stats["read"] == lines  # 154 with the shared corpora beside the checkout
    assert stats["read"] == (
        stats["kept"] + stats["filtered"] + stats["duplicates"] + stats["rejected"]
    )
    rows = sum(
        pq.read_metadata(out / s["path"]).num_rows
        for split in manifest["splits"].values()
        for s in split["shards"]
    )
    assert stats["kept"] == rows == sum(s["rows"] for s in manifest["splits"].values())
    # Python-docs pages repeat across branches, identically or with small edits.
    assert stats["duplicates_by_kind"]["exact"] > 0 and stats["duplicates_by_kind"]["near"] > 0
    duplicates = pq.read_table(out / "duplicates").to_pylist()
    assert len(duplicates) == stats["duplicates"]
    kept_ids = {
        i
        for split in ("train", "val")
        for i in pq.read_table(out / split, columns=["id"]).column("id").to_pylist()
    }
    assert all(d["duplicate_of"] in kept_ids and d["id"] not in kept_ids for d in duplicates)


def test_shards_and_manifest_follow_the_contract(prepared):
    out, manifest = prepared
    assert manifest["schema_version"] == 1 and manifest["complete"] is True
    assert [len(manifest["splits"][s]["shards"]) for s in ("train", "val")] == [3, 3]
    table = pq.read_table(out / "train")
    assert {"id", "text", "n_tokens", "n_chars", "source"} <= set(table.column_names)
    assert manifest["tokenizer"] == {"name": "char"}
    assert manifest["normalization"]["form"] == "NFKC"
    assert len(manifest["input"]["fingerprint"]) == 64
    assert [f["path"] for f in manifest["input"]["files"]] == [
        "gimp.jsonl.gz",
        "libreoffice.jsonl",
        "manpages.jsonl.gz",
        "python_docs.jsonl.gz",
    ]
    assert all((out / p).exists() for p in manifest["report"])
    for split in ("train", "val"):  # each shard's sha256, for readers to check it is the one
        for shard in manifest["splits"][split]["shards"]:
            data = (out / shard["path"]).read_bytes()
            assert shard["sha256"] == hashlib.sha256(data).hexdigest()


def test_ngram_counts_equal_counter_over_train_shards(prepared):
    out, manifest = prepared
    expected = Counter()
    for text in pq.read_table(out / "train", columns=["text"]).column("text").to_pylist():
        expected.update(ngrams_of(list(text), 3))
    table = pq.read_table(out / "ngrams").to_pylist()
    got = Counter({tuple(r["ngram"]): r["count"] for r in table})
    assert got == expected
    vocab = json.loads((out / "vocab.json").read_text())
    unigrams = {
        g[0]: c for g, c in expected.items() if len(g) == 1 and g[0] not in ("<bos>", "<eos>")
    }
    assert dict(zip(vocab["tokens"][3:], vocab["counts"][3:])) == unigrams


def test_two_runs_and_reordered_inputs_give_identical_shards(prepared, ja_slice_dir, tmp_path):
    out, _ = prepared
    again = tmp_path / "again"
    run(
        [
            "--input",
            str(ja_slice_dir / "python_docs.jsonl.gz"),
            "--input",
            str(ja_slice_dir / "[glm]*"),
            "--output",
            str(again),
            "--runner",
            "FnApiRunner",
            "--num-shards",
            "3",
            "--val-fraction",
            "0.2",
            *NEAR,
        ]
    )
    assert shard_digests(again) == shard_digests(out)


def test_multi_process_runner_gives_identical_shards(prepared, ja_slice_dir, tmp_path):
    out, _ = prepared
    multi = tmp_path / "multi"
    prepare(ja_slice_dir, multi, "--direct_num_workers=2", "--direct_running_mode=multi_processing")
    assert shard_digests(multi) == shard_digests(out)


def test_rerun_refuses_without_overwrite(prepared, ja_slice_dir, capsys):
    out, _ = prepared
    code = main(
        ["--input", str(ja_slice_dir / "*"), "--output", str(out), "--runner", "FnApiRunner"]
    )
    assert code == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--val-fraction", "1.0"], "--val-fraction"),
        (["--num-shards", "0"], "--num-shards"),
        (["--direct_running_mode", "multi_threading"], "multi_threading"),
        (["--scripts", "klingon"], "unknown script"),
        (["--runner", "NoSuchRunner"], "--runner NoSuchRunner"),
        (["--near-threshold", "1.5"], "--near-threshold"),
        (["--threshold", "0"], "--near-threshold"),
    ],
)
def test_bad_flags_fail_before_any_work(flags, message, ja_slice_dir, tmp_path, capsys):
    code = main(["--input", str(ja_slice_dir / "*"), "--output", str(tmp_path / "o"), *flags])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_glob_matching_nothing_is_a_clear_error(tmp_path, capsys):
    assert main(["--input", str(tmp_path / "nothing*.jsonl"), "--output", str(tmp_path)]) == 2
    assert "matches no file" in capsys.readouterr().err


def test_no_runner_flag_runs_on_the_fn_api_runner_without_trying_prism(
    ja_slice_dir, tmp_path, caplog
):
    flags = ["--input", str(ja_slice_dir / "*"), "--output", str(tmp_path / "o")]
    assert parse_options(flags)[0].view_as(StandardOptions).runner == "FnApiRunner"
    with caplog.at_level(logging.INFO):
        run([*flags, "--no-near-dedup", "--no-report"])
    assert (tmp_path / "o" / "manifest.json").exists()
    assert "prism" not in caplog.text.lower()  # Beam's DirectRunner would try it first


def test_local_mode_by_input_size_unless_chosen(ja_slice_dir, tmp_path):
    from apache_beam.options.pipeline_options import DirectOptions

    from beam_jobs.runtime.runner import LOCAL_PARALLEL_BYTES, choose_local_mode

    def mode(argv, size, cpus=2):
        opts, _ = parse_options(
            ["--input", str(ja_slice_dir / "*"), "--output", str(tmp_path), *argv]
        )
        choose_local_mode(opts, argv, size, cpus)
        direct = opts.view_as(DirectOptions)
        return direct.direct_running_mode, direct.direct_num_workers

    big = LOCAL_PARALLEL_BYTES
    assert mode([], big - 1) == ("in_memory", 1)
    assert mode([], big) == ("multi_processing", 2)
    assert mode([], big, cpus=16) == ("multi_processing", 4)
    assert mode([], big, cpus=1) == ("in_memory", 1)
    assert mode(["--direct_num_workers=1"], big) == ("in_memory", 1)  # the user chose
    assert mode(["--runner", "DirectRunner"], big) == ("in_memory", 1)


def test_local_workers_get_allocator_settings_unless_set(ja_slice_dir, tmp_path, monkeypatch):
    import os

    from beam_jobs.runtime.worker_env import WORKER_ALLOCATOR_ENV, local_worker_env

    def opts(*argv):
        return parse_options(
            ["--input", str(ja_slice_dir / "*"), "--output", str(tmp_path), *argv]
        )[0]

    workers = opts("--direct_num_workers=2", "--direct_running_mode=multi_processing")
    for name in WORKER_ALLOCATOR_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")  # the user's own choice stays
    with local_worker_env(workers) as added:
        assert os.environ["MALLOC_ARENA_MAX"] == "8"
        assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536"
        assert set(added) == set(WORKER_ALLOCATOR_ENV) - {"MALLOC_ARENA_MAX"}
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ  # restored after the run
    assert os.environ["MALLOC_ARENA_MAX"] == "8"
    for in_process in (opts(), opts("--runner", "PortableRunner")):
        with local_worker_env(in_process) as added:
            assert added == {} and "MALLOC_TRIM_THRESHOLD_" not in os.environ


def test_command_line_tunes_its_own_allocator_unless_the_environment_did(monkeypatch):
    import platform

    from beam_jobs.runtime.worker_env import tune_this_process

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert tune_this_process() is False  # the user's setting wins
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert tune_this_process() is glibc
