"""The whole pipeline through Beam's portability layer, the way Flink, Spark and Dataflow
Runner v2 run it: a job service receives the pipeline as a portable proto, and SDK workers
started by a separate worker pool (`--environment_type=EXTERNAL`) execute every stage, each in
its own process, talking to the job service over gRPC on loopback. The outputs must be
byte-identical to the in-process FnApiRunner's."""

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from beam_jobs.prepare import run

ROOT = Path(__file__).resolve().parents[2]
OPTIONS = ["--num-shards", "3", "--val-fraction", "0.2"]
START_TIMEOUT = 30
PIPELINE_TIMEOUT = 180


def output_digests(out: Path) -> dict:
    """sha256 of every shard and of vocab.json, by relative path."""
    files = [p for sub in ("train", "val", "ngrams", "duplicates", "rejected")
             for p in sorted((out / sub).glob("*.parquet"))] + [out / "vocab.json"]
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _start(cmd: list[str], log: Path, env: dict) -> subprocess.Popen:
    # A session of its own, so that teardown can stop the service with every worker it spawned.
    with open(log, "wb") as handle:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_for(what: str, probe, procs: list[subprocess.Popen], logs: list[Path]):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.2)
    tails = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}"
                      for log in logs)
    raise RuntimeError(f"{what} did not come up within {START_TIMEOUT} s\n{tails}")


def _accepts(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def portable_services(tmp_path):
    """A local job service and an external worker pool, each in its own process on a free
    port (both bind port 0 and tell theirs: no race for a port); stopped on teardown."""
    env = dict(os.environ)
    # Workers must import beam_jobs, and the pool starts them as a bare `python`.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    port_file = tmp_path / "job_service.port"
    logs = [tmp_path / "job_service.log", tmp_path / "worker_pool.log"]
    procs = []
    try:
        procs.append(_start([sys.executable, "-m",
                             "apache_beam.runners.portability.local_job_service_main",
                             "--port", "0", "--port_file", str(port_file)], logs[0], env))
        procs.append(_start([sys.executable, "-m",
                             "apache_beam.runners.worker.worker_pool_main",
                             "--service_port", "0"], logs[1], env))

        def job_endpoint():
            text = port_file.read_text().strip() if port_file.exists() else ""
            return f"localhost:{text}" if text.isdigit() else None

        def pool_endpoint():
            found = re.search(r"worker pool servicer at port: (\S+:\d+)", logs[1].read_text())
            return found.group(1) if found else None

        job = _wait_for("the job service", job_endpoint, procs, logs)
        pool = _wait_for("the worker pool", pool_endpoint, procs, logs)
        for address in (job, pool):
            _wait_for(f"a listener on {address}", lambda a=address: _accepts(a), procs, logs)
        yield {"job_endpoint": job, "worker_pool": pool, "pool_log": logs[1], "env": env}
    finally:
        for proc in reversed(procs):
            _stop(proc)


def test_portable_runner_with_external_workers_matches_in_process_runner(
        portable_services, ja_slice_dir, tmp_path):
    # The default pipeline, whatever it holds (near dedup included once it is on by default).
    in_process, portable = tmp_path / "in_process", tmp_path / "portable"
    run(["--input", str(ja_slice_dir / "*"), "--output", str(in_process),
         "--runner", "FnApiRunner", *OPTIONS])

    cmd = [sys.executable, "-m", "beam_jobs.prepare",
           "--input", str(ja_slice_dir / "*"), "--output", str(portable),
           "--runner", "PortableRunner",
           "--job_endpoint", portable_services["job_endpoint"],
           "--environment_type", "EXTERNAL",
           "--environment_config", portable_services["worker_pool"], *OPTIONS]
    done = subprocess.run(cmd, cwd=ROOT, env=portable_services["env"], capture_output=True,
                          text=True, timeout=PIPELINE_TIMEOUT)
    assert done.returncode == 0, done.stderr[-4000:]
    # The work ran in SDK workers that the external pool started, not in the job service.
    assert "Starting worker with command" in portable_services["pool_log"].read_text()

    expected = output_digests(in_process)
    assert len(expected) == 3 + 3 + 4 + 3 + 1 + 1  # train, val, ngrams, duplicates, rejected
    assert output_digests(portable) == expected
    assert (json.loads((portable / "stats.json").read_text())
            == json.loads((in_process / "stats.json").read_text()))
    manifest = json.loads((portable / "manifest.json").read_text())
    assert manifest["complete"] is True
    reference = json.loads((in_process / "manifest.json").read_text())
    for key in ("splits", "ngrams", "duplicates", "rejected", "input"):
        assert manifest[key] == reference[key]
