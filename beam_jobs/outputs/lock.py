"""One run at a time in an output directory, on any filesystem.

A run writes `DIR/_lock.json` (its run id, host, pid, start time) before it touches anything,
and refreshes the file's `heartbeat` while it runs. Another run that finds a fresh lock refuses
to start; a lock whose heartbeat is older than `STALE_SECONDS` belongs to a run that died, and
is taken over with a warning. Object stores have no exclusive create, so a run also reads the
lock back after writing it, and the steps that commit (the stage marker, the manifest) check
that it still holds their run id: of two runs that raced, the one that lost the lock fails
before it writes a manifest, and never deletes the other's files.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid

from apache_beam.io.filesystems import FileSystems

from beam_jobs.io.fs import read_json, write_json

LOCK = "_lock.json"
HEARTBEAT_SECONDS = 10.0
STALE_SECONDS = 120.0


class LockLost(RuntimeError):
    """Another run took the output directory over while this one was running."""


def lock_path(output_dir: str) -> str:
    return FileSystems.join(output_dir, LOCK)


def check_lock(output_dir: str, run_id: str) -> None:
    """Raise `LockLost` unless `run_id` still holds the directory (called before commits)."""
    held = read_json(lock_path(output_dir))
    if not held or held.get("run_id") != run_id:
        other = held.get("run_id") if held else None
        raise LockLost(
            f"{output_dir}: another run ({other}) took over the directory; this "
            "run stops before writing anything more"
        )


class OutputLock:
    """Context manager: holds the lock of `output_dir` while the block runs."""

    def __init__(self, output_dir: str, clock=time.time):
        self.output_dir, self.clock = output_dir, clock
        self.run_id = uuid.uuid4().hex
        self.started = clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _body(self) -> dict:
        return {
            "run_id": self.run_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": self.started,
            "heartbeat": self.clock(),
        }

    def acquire(self) -> None:
        """Take the lock or raise ValueError (one line) naming the run that holds it."""
        path = lock_path(self.output_dir)
        if not FileSystems.exists(self.output_dir):
            FileSystems.mkdirs(self.output_dir)
        held = read_json(path)
        if held and not self._stale(held):
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(held.get("started", 0)))
            raise ValueError(
                f"{self.output_dir} is in use by another run (pid {held.get('pid')} on "
                f"{held.get('host')}, since {since}); wait for it to finish, or delete {path} "
                "if that run is gone"
            )
        if held:
            FileSystems.delete([path])
        if FileSystems.get_scheme(path) in (None, "file"):
            try:  # a local file: an exclusive create decides a race outright
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                raise ValueError(f"{self.output_dir} was just taken by another run") from None
        write_json(path, self._body())
        try:
            check_lock(self.output_dir, self.run_id)  # read back: the last of two writers wins
        except LockLost as exc:
            raise ValueError(str(exc)) from None
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()

    def _stale(self, held: dict) -> bool:
        """A lock whose run is gone: a dead process on this host, or no heartbeat lately."""
        if held.get("host") == socket.gethostname():
            try:
                os.kill(int(held.get("pid", 0)), 0)
            except ProcessLookupError:
                return True
            except (PermissionError, ValueError, OverflowError):
                pass
        return self.clock() - float(held.get("heartbeat", 0)) >= STALE_SECONDS

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(Exception):
                held = read_json(lock_path(self.output_dir))
                if held and held.get("run_id") == self.run_id:
                    write_json(lock_path(self.output_dir), self._body())

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with contextlib.suppress(Exception):
            held = read_json(lock_path(self.output_dir))
            if held and held.get("run_id") == self.run_id:
                FileSystems.delete([lock_path(self.output_dir)])

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
