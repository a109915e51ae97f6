"""The whole pipeline through Beam's portability layer, the way Flink, Spark and Dataflow
Runner v2 run it: a job service receives the pipeline as a portable proto, and SDK workers
started by a separate worker pool (`--environment_type=EXTERNAL`) execute every stage, each in
its own process, talking to the job service over gRPC on loopback. The outputs must be
byte-identical to the in-process FnApiRunner's."""

import json
import subprocess
import sys

import pytest

from beam_jobs.prepare import run
from tests.runners.services import (
    ROOT,
    accepts,
    output_digests,
    start,
    start_worker_pool,
    stop,
    wait_for,
    worker_env,
)

OPTIONS = ["--num-shards", "3", "--val-fraction", "0.2"]
PIPELINE_TIMEOUT = 180


@pytest.fixture
def portable_services(tmp_path):
    """A local job service and an external worker pool, each in its own process on a free
    port (both bind port 0 and tell theirs: no race for a port); stopped on teardown."""
    env = worker_env()
    port_file = tmp_path / "job_service.port"
    logs = [tmp_path / "job_service.log", tmp_path / "worker_pool.log"]
    procs = []
    try:
        procs.append(
            start(
                [
                    sys.executable,
                    "-m",
                    "apache_beam.runners.portability.local_job_service_main",
                    "--port",
                    "0",
                    "--port_file",
                    str(port_file),
                ],
                logs[0],
                env,
            )
        )

        def job_endpoint():
            text = port_file.read_text().strip() if port_file.exists() else ""
            return f"localhost:{text}" if text.isdigit() else None

        job = wait_for("the job service", job_endpoint, procs, logs)
        pool = start_worker_pool(logs[1], env, procs)
        wait_for(f"a listener on {job}", lambda: accepts(job), procs, logs)
        yield {"job_endpoint": job, "worker_pool": pool, "pool_log": logs[1], "env": env}
    finally:
        for proc in reversed(procs):
            stop(proc)


def test_portable_runner_with_external_workers_matches_in_process_runner(
    portable_services, ja_slice_dir, tmp_path
):
    # The default pipeline, whatever it holds (near dedup included once it is on by default).
    in_process, portable = tmp_path / "in_process", tmp_path / "portable"
    run(
        [
            "--input",
            str(ja_slice_dir / "*"),
            "--output",
            str(in_process),
            "--runner",
            "FnApiRunner",
            *OPTIONS,
        ]
    )

    cmd = [
        sys.executable,
        "-m",
        "beam_jobs.prepare",
        "--input",
        str(ja_slice_dir / "*"),
        "--output",
        str(portable),
        "--runner",
        "PortableRunner",
        "--job_endpoint",
        portable_services["job_endpoint"],
        "--environment_type",
        "EXTERNAL",
        "--environment_config",
        portable_services["worker_pool"],
        *OPTIONS,
    ]
    done = subprocess.run(
        cmd,
        cwd=ROOT,
        env=portable_services["env"],
        capture_output=True,
        text=True,
        timeout=PIPELINE_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    # The work ran in SDK workers that the external pool started, not in the job service.
    assert "Starting worker with command" in portable_services["pool_log"].read_text()

    expected = output_digests(in_process)
    assert len(expected) == 3 + 3 + 4 + 3 + 1 + 1  # train, val, ngrams, duplicates, rejected
    assert output_digests(portable) == expected
    assert json.loads((portable / "stats.json").read_text()) == json.loads(
        (in_process / "stats.json").read_text()
    )
    manifest = json.loads((portable / "manifest.json").read_text())
    assert manifest["complete"] is True
    reference = json.loads((in_process / "manifest.json").read_text())
    for key in ("splits", "ngrams", "duplicates", "rejected", "input"):
        assert manifest[key] == reference[key]
