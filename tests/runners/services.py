"""Helpers shared by the portable-runner tests: start and stop services in their own process
groups, wait for their ports, digest a run's outputs."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30


def output_digests(out: Path) -> dict:
    """sha256 of every shard and of vocab.json, by relative path."""
    files = [
        p
        for sub in ("train", "val", "ngrams", "duplicates", "rejected")
        for p in sorted((out / sub).glob("*.parquet"))
    ] + [out / "vocab.json"]
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def worker_env() -> dict:
    """The environment for services whose SDK workers must import beam_jobs: the pool starts
    each worker as a bare `python`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def start(cmd: list, log: Path, env: dict) -> subprocess.Popen:
    # A session of its own, so that teardown can stop the service with every worker it spawned.
    with open(log, "wb") as handle:
        return subprocess.Popen(
            [str(c) for c in cmd],
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen) -> None:
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


def wait_for(what: str, probe, procs: list, logs: list, timeout: float = START_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.2)
    tails = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}" for log in logs)
    raise RuntimeError(f"{what} did not come up within {timeout} s\n{tails}")


def accepts(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def logged_address(log: Path, pattern: str):
    """The first `host:port` that `pattern` (one group) finds in a service's log, else None."""
    found = re.search(pattern, log.read_text(errors="replace")) if log.exists() else None
    return found.group(1) if found else None


def start_worker_pool(log: Path, env: dict, procs: list, executable: Path | None = None) -> str:
    """`worker_pool_main` on a free port (it binds port 0 and logs it); its address."""
    cmd = [
        sys.executable,
        "-m",
        "apache_beam.runners.worker.worker_pool_main",
        "--service_port",
        "0",
    ]
    if executable is not None:
        cmd += ["--container_executable", executable]
    procs.append(start(cmd, log, env))
    address = wait_for(
        "the worker pool",
        lambda: logged_address(log, r"worker pool servicer at port: (\S+:\d+)"),
        procs,
        [log],
    )
    wait_for(f"a listener on {address}", lambda: accepts(address), procs, [log])
    return address
