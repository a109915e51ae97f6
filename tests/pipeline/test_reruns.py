"""Safe reruns: the manifest is the commit marker; --overwrite replaces cleanly; --resume
reuses the materialized dedup stage when its options and inputs are unchanged."""

import hashlib
import json

import pytest

from beam_jobs import prepare
from beam_jobs.outputs import finish

BASE = ["--runner", "FnApiRunner", "--num-shards", "2", "--no-near-dedup"]


def args(input_dir, out, *extra):
    return ["--input", str(input_dir / "*"), "--output", str(out), *BASE, *extra]


def digests(out) -> dict:
    """Every output file's digest; spill files are intermediate and named at random (their
    content depends on bundles), so they are left out."""
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
        and p.suffix in (".parquet", ".json")
        and p.name not in ("manifest.json", "stage.json")
        and "_stages/dedup/spill" not in p.as_posix()
    }


@pytest.fixture()
def killed_run(ja_slice_dir, tmp_path, monkeypatch):
    """A run that dies after the dedup stage, while drawing the report."""
    out = tmp_path / "out"

    def die(*a, **k):
        raise RuntimeError("killed")

    with monkeypatch.context() as m:
        m.setattr(finish, "draw_report", die)
        with pytest.raises(Exception, match="killed"):
            prepare.run(args(ja_slice_dir, out))
    return out


def test_a_killed_run_never_looks_complete(killed_run, ja_slice_dir, capsys):
    assert not (killed_run / "manifest.json").exists()
    assert (killed_run / "_stages/dedup/stage.json").exists()
    assert prepare.main(args(ja_slice_dir, killed_run)) == 2
    assert "incomplete run" in capsys.readouterr().err


def test_resume_reuses_the_dedup_stage_and_matches_a_fresh_run(
    killed_run, ja_slice_dir, tmp_path, monkeypatch
):
    calls = []
    real = prepare.build_dedup_stage
    monkeypatch.setattr(prepare, "build_dedup_stage", lambda *a: calls.append(1) or real(*a))
    prepare.run(args(ja_slice_dir, killed_run, "--resume"))
    assert calls == []  # reused, not recomputed
    fresh = tmp_path / "fresh"
    prepare.run(args(ja_slice_dir, fresh))
    assert calls == [1]
    assert digests(killed_run) == digests(fresh)


def test_resume_recomputes_when_stage_options_change(killed_run, ja_slice_dir, monkeypatch):
    calls = []
    real = prepare.build_dedup_stage
    monkeypatch.setattr(prepare, "build_dedup_stage", lambda *a: calls.append(1) or real(*a))
    prepare.run(args(ja_slice_dir, killed_run, "--resume", "--min-chars", "500"))
    assert calls == [1]
    # Only the split changes: the dedup stage stays reusable across a completed run.
    prepare.run(
        args(
            ja_slice_dir,
            killed_run,
            "--resume",
            "--overwrite",
            "--min-chars",
            "500",
            "--val-fraction",
            "0.3",
        )
    )
    assert calls == [1]
    manifest = json.loads((killed_run / "manifest.json").read_text())
    assert manifest["options"]["val_fraction"] == 0.3


def test_overwrite_replaces_cleanly(ja_slice_dir, tmp_path):
    out = tmp_path / "out"
    prepare.run(args(ja_slice_dir, out, "--num-shards", "3"))
    prepare.run(args(ja_slice_dir, out, "--overwrite"))
    assert sorted(p.name for p in (out / "train").iterdir()) == [
        "train-00000-of-00002.parquet",
        "train-00001-of-00002.parquet",
    ]
    marker = json.loads((out / "_stages/dedup/stage.json").read_text())
    spilled = sorted(str(p.relative_to(out)) for p in (out / "_stages/dedup/spill").iterdir())
    assert spilled and spilled == [f["path"] for f in marker["spill_files"]]
    assert all(
        f["shards"] == sorted(f["shards"]) and set(f["shards"]) <= {0, 1}
        for f in marker["spill_files"]
    )
