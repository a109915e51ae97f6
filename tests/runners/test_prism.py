"""The whole pipeline on Prism, Beam's own portable runner (Go): the binary `scripts/prism.sh`
builds, found by `--runner PrismRunner` with no other flag. Prism fuses, shuffles and
schedules on its own and speaks the Job and Fn APIs that Flink's and Spark's job servers
speak, so these are the pipeline's runs on an independent runner: LOOPBACK (the SDK worker in
the launching process), an EXTERNAL worker pool in its own process, a long-running Prism job
server reached by the generic PortableRunner, and an SDK worker killed in the middle of near
dedup. Each run's outputs must be byte-identical to the in-process FnApiRunner's.

Without a Prism build these tests skip, except under CI=true (`.ci/run` builds Prism first),
where a missing Prism is a failure."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from beam_jobs.prepare import run
from beam_jobs.runtime.prism import built_binary
from tests.runners.services import (
    ROOT,
    logged_address,
    output_digests,
    start,
    start_worker_pool,
    stop,
    wait_for,
    worker_env,
)

OPTIONS = ["--num-shards", "3", "--val-fraction", "0.2", "--no-report"]
PIPELINE_TIMEOUT = 240
# The first step of near dedup's connected components: the kill lands after the candidates
# were found and verified, before any label exists.
STALL_AT = "NearDedup/ConnectedComponents/"


@pytest.fixture(scope="module")
def prism() -> Path:
    binary = built_binary()
    if binary is None:
        message = "no Prism build for this apache-beam: run `bash scripts/prism.sh`"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: .ci/run builds it)")
        pytest.skip(message)
    return binary


@pytest.fixture(scope="module")
def reference(ja_slice_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prism_reference") / "in_process"
    run(
        [
            "--input",
            str(ja_slice_dir / "*"),
            "--output",
            str(out),
            "--runner",
            "FnApiRunner",
            *OPTIONS,
        ]
    )
    return out


def prepare(input_dir: Path, out: Path, *flags: str, env: dict | None = None, **kwargs):
    cmd = [
        sys.executable,
        "-m",
        "beam_jobs.prepare",
        "--input",
        str(input_dir / "*"),
        "--output",
        str(out),
        *OPTIONS,
        *flags,
    ]
    return subprocess.run(
        cmd,
        cwd=ROOT,
        env=env or worker_env(),
        capture_output=True,
        text=True,
        timeout=PIPELINE_TIMEOUT,
        **kwargs,
    )


def assert_same_outputs(out: Path, reference: Path) -> None:
    expected = output_digests(reference)
    assert len(expected) == 3 + 3 + 4 + 3 + 1 + 1  # train, val, ngrams, duplicates, rejected
    assert output_digests(out) == expected
    stats = json.loads((out / "stats.json").read_text())
    assert stats == json.loads((reference / "stats.json").read_text())
    for counts in [stats, *stats["files"].values()]:  # in total and per input file
        assert counts["read"] == (
            counts["kept"] + counts["filtered"] + counts["duplicates"] + counts["rejected"]
        )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is True
    expected_manifest = json.loads((reference / "manifest.json").read_text())
    for key in ("splits", "ngrams", "duplicates", "rejected", "input"):
        assert manifest[key] == expected_manifest[key]


@pytest.fixture
def services(tmp_path):
    """Processes a test starts (a worker pool, a job server), each in its own session,
    stopped with everything they spawned on teardown."""
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in reversed(procs):
        stop(proc)


def test_prism_loopback_matches_in_process_runner(prism, reference, ja_slice_dir, tmp_path):
    # No --prism_location: the runner must find the scripts/prism.sh build by itself.
    done = prepare(ja_slice_dir, tmp_path / "out", "--runner", "PrismRunner")
    assert done.returncode == 0, done.stderr[-4000:]
    assert str(prism) in done.stderr  # Beam logs the command it starts Prism with
    assert_same_outputs(tmp_path / "out", reference)


def test_prism_with_external_worker_pool_matches_in_process_runner(
    prism, reference, ja_slice_dir, tmp_path, services
):
    log = tmp_path / "worker_pool.log"
    pool = start_worker_pool(log, worker_env(), services)
    done = prepare(
        ja_slice_dir,
        tmp_path / "out",
        "--runner",
        "PrismRunner",
        "--environment_type",
        "EXTERNAL",
        "--environment_config",
        pool,
        "--sdk_worker_parallelism",
        "2",
    )
    assert done.returncode == 0, done.stderr[-4000:]
    # The work ran in SDK workers the pool started (Prism asks for one per environment).
    assert log.read_text().count("Starting worker with command") >= 1
    assert_same_outputs(tmp_path / "out", reference)


def test_portable_runner_on_a_prism_job_server_matches_in_process_runner(
    prism, reference, ja_slice_dir, tmp_path, services
):
    # The client path of a Flink or Spark job server: a job server already running, the
    # generic PortableRunner submitting to its endpoint.
    log = tmp_path / "prism.log"
    services.append(
        start(
            [prism, "--job_port", "0", "--serve_http=false", "--log_kind", "json"],
            log,
            worker_env(),
        )
    )
    endpoint = wait_for(
        "the Prism job server",
        lambda: logged_address(log, r'"endpoint":"(localhost:\d+)"'),
        services,
        [log],
    )
    done = prepare(
        ja_slice_dir,
        tmp_path / "out",
        "--runner",
        "PortableRunner",
        "--job_endpoint",
        endpoint,
        "--environment_type",
        "LOOPBACK",
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert '"job-001' in log.read_text() or "job-001" in log.read_text()  # it ran the job
    assert_same_outputs(tmp_path / "out", reference)


def test_killed_sdk_worker_fails_without_manifest_and_resume_matches(
    prism, reference, ja_slice_dir, tmp_path, services
):
    wrapper = tmp_path / "harness.sh"
    wrapper.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" '
        f'"{ROOT / "tests" / "runners" / "stalling_harness.py"}" "$@"\n'
    )
    wrapper.chmod(0o755)
    pid_file = tmp_path / "stalled.pid"
    env = {**worker_env(), "STALL_AT": STALL_AT, "STALL_PID_FILE": str(pid_file)}
    pool = start_worker_pool(tmp_path / "worker_pool.log", env, services, executable=wrapper)
    out = tmp_path / "out"
    flags = [
        "--runner",
        "PrismRunner",
        "--environment_type",
        "EXTERNAL",
        "--environment_config",
        pool,
    ]
    cmd = [
        sys.executable,
        "-m",
        "beam_jobs.prepare",
        "--input",
        str(ja_slice_dir / "*"),
        "--output",
        str(out),
        *OPTIONS,
        *flags,
    ]
    launcher = subprocess.Popen(
        cmd, cwd=ROOT, env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + PIPELINE_TIMEOUT
        while not pid_file.exists() and launcher.poll() is None:
            assert time.monotonic() < deadline, "near dedup never reached the stall"
            time.sleep(0.1)
        assert pid_file.exists(), launcher.communicate()[1][-4000:]
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        _, stderr = launcher.communicate(timeout=PIPELINE_TIMEOUT)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    assert launcher.returncode != 0
    assert "SDK worker disconnected" in stderr or "FAILED" in stderr, stderr[-4000:]
    assert not (out / "manifest.json").exists()
    assert not (out / "_stages" / "dedup" / "stage.json").exists()  # the kill was before it

    done = prepare(ja_slice_dir, out, *flags, "--resume")
    assert done.returncode == 0, done.stderr[-4000:]
    assert_same_outputs(out, reference)
