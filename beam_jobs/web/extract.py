"""HTML to text with Resiliparse's `extract_plain_text` (main content), bounded in size and in
time so that one pathological page cannot stall a worker.

Resiliparse was chosen over trafilatura by measurement (docs/web.md): on the help pages that
have a reference text it is as close or closer to the reference, and it is an order of
magnitude faster.

The bounds:
- size: HTML over `max_html_chars` is not parsed (`html_too_large`);
- time: the extractor is C code that a Python timer cannot interrupt, so, as datatrove does,
  it runs in a child process that is killed when a page takes over `timeout_s`
  (`extract_timeout`; the child is started again for the next page). A page that crashes
  the child is `extract_crashed`. `timeout_s=0` extracts in-process, with the size bound
  only.
"""

from __future__ import annotations

import os
import select
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree

OK, TOO_LARGE, TIMEOUT, CRASHED, FAILED, EMPTY = (
    "ok",
    "html_too_large",
    "extract_timeout",
    "extract_crashed",
    "extract_failed",
    "empty_text",
)


@dataclass(frozen=True)
class ExtractConfig:
    main_content: bool = True
    max_html_chars: int = 4 << 20
    timeout_s: float = 2.0


@dataclass(frozen=True)
class Extracted:
    text: str | None
    reason: str  # OK, or why there is no text


def html_to_text(html: str, main_content: bool = True) -> str:
    """The visible text of a page, paragraphs and list items on lines of their own."""
    tree = HTMLTree.parse(html)
    return extract_plain_text(tree, main_content=main_content, preserve_formatting=True)


_LENGTH = struct.Struct("<Q")


def _read_exactly(stream, n: int) -> bytes | None:
    data = stream.read(n)
    return data if len(data) == n else None


def _serve(main_content: bool) -> None:
    """The child's loop on stdin/stdout: a length-prefixed UTF-8 page in, a status byte
    (0 text, 1 error message) and a length-prefixed UTF-8 answer out, until stdin closes."""
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    out.write(b"R")
    out.flush()
    while (head := _read_exactly(inp, _LENGTH.size)) is not None:
        # "ignore": valid UTF-8 but for a character cut at the end of a truncated payload
        html = inp.read(_LENGTH.unpack(head)[0]).decode("utf-8", errors="ignore")
        try:
            status, answer = 0, html_to_text(html, main_content)
        except Exception as exc:  # an exception is an answer; only a hang or a crash is not
            status, answer = 1, f"{type(exc).__name__}: {exc}"
        data = answer.encode("utf-8", errors="replace")
        out.write(bytes([status]) + _LENGTH.pack(len(data)) + data)
        out.flush()


class _Sandbox:
    """One child process (`python -m beam_jobs.web.extract`) that extracts; started on first
    use and again after each kill. A plain subprocess, not multiprocessing: nothing of the
    parent (a Beam worker's threads, its __main__) is forked or re-imported."""

    def __init__(self, main_content: bool):
        self.main_content = main_content
        self.proc = self.err = None

    def _start(self) -> None:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])  # where beam_jobs is importable from
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        args = [sys.executable, "-m", "beam_jobs.web.extract"]
        if not self.main_content:
            args.append("--all-text")
        # stderr to a file: a pipe nobody reads would block a chatty child.
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, env=env
        )
        try:
            ready = self._read(1, time.monotonic() + 120)
        except EOFError:
            ready = None
        if ready != b"R":
            err = self.stop(kill=True)[-800:]
            raise RuntimeError(f"the extractor's child process did not start: {err}")

    def _read(self, n: int, deadline: float) -> bytes | None:
        """`n` bytes from the child, or None if they are not there by `deadline`."""
        fd, parts, have = self.proc.stdout.fileno(), [], 0
        while have < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            piece = os.read(fd, n - have)
            if not piece:
                raise EOFError("the extractor's child process exited")
            parts.append(piece)
            have += len(piece)
        return b"".join(parts)

    def run(self, html: str, timeout_s: float, utf8: bytes | None = None) -> tuple[str, str]:
        if self.proc is None:
            self._start()
        deadline = time.monotonic() + timeout_s
        try:
            data = utf8 if utf8 is not None else html.encode("utf-8", errors="replace")
            self.proc.stdin.write(_LENGTH.pack(len(data)) + data)
            self.proc.stdin.flush()
            head = self._read(1 + _LENGTH.size, deadline)
            body = head and self._read(_LENGTH.unpack(head[1:])[0], deadline)
        except (EOFError, OSError) as exc:
            self.stop(kill=True)
            return CRASHED, f"{type(exc).__name__}: {exc}"
        if body is None:
            self.stop(kill=True)
            return TIMEOUT, f"over {timeout_s} s"
        return ("ok" if head[0] == 0 else "error"), body.decode("utf-8")

    def stop(self, kill: bool = False) -> str:
        """End the child (politely unless `kill`); what it wrote to stderr."""
        proc, self.proc = self.proc, None
        if proc is None:
            return ""
        if kill:
            proc.kill()
        for pipe in (proc.stdin, proc.stdout):
            try:
                pipe.close()
            except OSError:  # the child is gone already
                pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self.err.seek(0)
        err = self.err.read().decode(errors="replace")
        self.err.close()
        return err


class Extractor:
    """`extract(html) -> Extracted` under `config`'s bounds; `close()` stops the child."""

    def __init__(self, config: ExtractConfig = ExtractConfig()):
        self.config = config
        self.sandbox = _Sandbox(config.main_content) if config.timeout_s > 0 else None
        self.detail = ""  # what the last failure said

    def extract(self, html: str, utf8: bytes | None = None) -> Extracted:
        """`utf8`: the page's own bytes when they are its UTF-8 text already (most pages),
        sent to the child as they are instead of encoding `html` again."""
        if len(html) > self.config.max_html_chars:
            return Extracted(None, TOO_LARGE)
        if self.sandbox is None:
            try:
                kind, value = "ok", html_to_text(html, self.config.main_content)
            except Exception as exc:  # a parser error is a reason, not a crash of the run
                kind, value = "error", f"{type(exc).__name__}: {exc}"
        else:
            kind, value = self.sandbox.run(html, self.config.timeout_s, utf8)
        if kind != "ok":
            self.detail = value
            return Extracted(None, FAILED if kind == "error" else kind)
        text = value.strip()
        return Extracted(text, OK) if text else Extracted(None, EMPTY)

    def close(self) -> None:
        if self.sandbox is not None:
            self.sandbox.stop()


if __name__ == "__main__":
    _serve(main_content="--all-text" not in sys.argv)
