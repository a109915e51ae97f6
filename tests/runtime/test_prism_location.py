"""How a run on Prism finds its binary (beam_jobs/runtime/prism.py) and scripts/prism.sh's
contract, without building or starting Prism."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import (
    PipelineOptions,
    PortableOptions,
    PrismRunnerOptions,
)
from apache_beam.runners.portability.prism_runner import PrismJobServer
from conftest import SAMPLE

from beam_jobs import prepare
from beam_jobs.runtime import prism

ROOT = Path(__file__).resolve().parents[2]
TAG = prism.release_tag()


def fake_binary(root: Path, tag: str = TAG) -> Path:
    path = root / tag / "prism"
    path.parent.mkdir(parents=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def no_prism(tmp_path, monkeypatch):
    """No build, no Beam download cache, and the release unreachable."""
    monkeypatch.setenv("PRISM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(PrismJobServer, "BIN_CACHE", str(tmp_path / "beam_cache"))
    monkeypatch.setattr(prism, "downloadable", lambda url: False)
    return tmp_path


def options(*flags: str) -> PipelineOptions:
    return PipelineOptions(list(flags))


def location(opts: PipelineOptions):
    return opts.view_as(PrismRunnerOptions).prism_location


@pytest.mark.parametrize("runner", ["PrismRunner", "prism", "DirectRunner"])
def test_the_build_of_scripts_prism_sh_becomes_prism_location(no_prism, runner):
    built = fake_binary(no_prism / "cache")
    opts = options("--runner", runner)
    assert prism.configure_prism(opts) == str(built)
    assert location(opts) == str(built)


def test_other_runners_are_left_alone(no_prism):
    fake_binary(no_prism / "cache")
    for runner in ("FnApiRunner", "PortableRunner"):
        opts = options("--runner", runner)
        assert prism.configure_prism(opts) is None and location(opts) is None


def test_an_explicit_location_wins_and_must_exist(no_prism):
    fake_binary(no_prism / "cache")
    mine = no_prism / "my_prism"
    mine.write_text("")
    opts = options("--runner", "PrismRunner", "--prism_location", str(mine))
    assert prism.configure_prism(opts) == str(mine) == location(opts)
    url = "https://github.com/apache/beam/releases/tag/v2.77.0"
    assert prism.configure_prism(options("--runner", "PrismRunner", "--prism_location", url)) == url
    with pytest.raises(ValueError, match="no_such.*no such file.*scripts/prism.sh"):
        prism.configure_prism(
            options("--prism_location", str(no_prism / "no_such"), "--runner", "PrismRunner")
        )


def test_a_version_override_looks_for_that_build(no_prism):
    other = fake_binary(no_prism / "cache", "v2.70.0")
    opts = options("--runner", "PrismRunner", "--prism_beam_version_override", "v2.70.0")
    assert prism.configure_prism(opts) == str(other)


def test_beams_own_cached_download_is_used_as_beam_would(no_prism):
    zipped = Path(PrismJobServer.BIN_CACHE) / os.path.basename(prism.release_url())
    zipped.parent.mkdir(parents=True)
    zipped.write_bytes(b"PK")
    opts = options("--runner", "PrismRunner")
    assert prism.configure_prism(opts) == str(zipped)
    assert location(opts) is None  # Beam finds its cache itself


def test_online_without_a_binary_beam_downloads_the_release(no_prism):
    opts = options("--runner", "PrismRunner")
    assert prism.configure_prism(opts, probe=lambda url: True) == prism.release_url()
    assert prism.release_url().startswith(
        f"https://github.com/apache/beam/releases/download/{TAG}/apache_beam-{TAG}-prism-"
    )


@pytest.mark.parametrize("runner", ["PrismRunner", "DirectRunner"])
def test_offline_without_a_binary_is_a_one_line_error_before_any_work(no_prism, runner, capsys):
    out = no_prism / "out"
    code = prepare.main(["--input", str(SAMPLE), "--output", str(out), "--runner", runner])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith(f"error: --runner {runner}: no Prism binary")
    assert "bash scripts/prism.sh" in err[-1]
    assert not out.exists()


def _path_without_go() -> str:
    return os.pathsep.join(
        d
        for d in os.environ["PATH"].split(os.pathsep)
        if not os.access(os.path.join(d, "go"), os.X_OK)
    )


def _prism_sh(cache: Path, path: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PRISM_CACHE": str(cache), "PATH": path, "PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "prism.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_prism_sh_reuses_a_build_and_names_go_when_missing(tmp_path):
    path = _path_without_go()
    missing = _prism_sh(tmp_path / "empty", path)
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.strip().splitlines() == [missing.stderr.strip()]  # one line
    assert "Go is not on PATH" in missing.stderr
    built = fake_binary(tmp_path / "cache")
    reused = _prism_sh(tmp_path / "cache", path)  # no Go needed to reuse a build
    assert reused.returncode == 0, reused.stderr
    assert reused.stdout.splitlines()[-1] == str(built)


def test_a_run_on_prism_outlives_the_clients_default_deadline(no_prism):
    # Beam 2.77 reads the job's state stream with --job_server_timeout as its deadline.
    fake_binary(no_prism / "cache")
    opts = options("--runner", "PrismRunner")
    prism.configure_prism(opts)
    assert opts.view_as(PortableOptions).job_server_timeout == prism.PRISM_JOB_TIMEOUT_S
    mine = options("--runner", "PrismRunner", "--job_server_timeout", "60")
    prism.configure_prism(mine)
    assert mine.view_as(PortableOptions).job_server_timeout == 60
    other = options("--runner", "FnApiRunner")
    prism.configure_prism(other)
    assert other.view_as(PortableOptions).job_server_timeout == 300
