"""The progress line: when it prints, what it says, and when it stays quiet."""

import io
import pickle

from beam_jobs.runtime import progress
from beam_jobs.runtime.progress import ProgressReporter, progress_enabled, report_progress


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_prints_at_most_once_an_interval_with_counts_and_rates():
    clock, stream = FakeClock(), io.StringIO()
    reporter = ProgressReporter(interval=10, stream=stream, clock=clock)
    for second in range(25):
        clock.now = second
        reporter.update(2, 1_000_000)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert "read 22 docs, 11.0 MB in 10 s: 1.1 MB/s (last 10 s: 1.1 MB/s)" in lines[0], lines
    assert "read 42 docs, 21.0 MB in 20 s" in lines[1]


def test_quiet_unless_a_terminal_or_forced(monkeypatch):
    monkeypatch.delenv(progress.ENV_ENABLE, raising=False)
    assert not progress_enabled(stream=io.StringIO())
    assert progress_enabled(stream=Terminal())
    assert not progress_enabled("off", stream=Terminal())
    monkeypatch.setenv(progress.ENV_ENABLE, "0")
    assert not progress_enabled(stream=Terminal())
    monkeypatch.setenv(progress.ENV_ENABLE, "1")
    assert progress_enabled(stream=io.StringIO())


def test_report_progress_uses_one_reporter_per_process(monkeypatch, capsys):
    monkeypatch.setenv(progress.ENV_ENABLE, "1")
    monkeypatch.setenv(progress.ENV_INTERVAL, "0")
    monkeypatch.setattr(progress, "_reporters", {})
    report_progress(1, 10)
    report_progress(1, 10)
    report_progress(1, 10, stage="clean")
    assert progress._reporters["read"].records == 2
    assert progress._reporters["clean"].records == 1
    assert "read 2 docs" in capsys.readouterr().err
    monkeypatch.setenv(progress.ENV_ENABLE, "0")
    monkeypatch.setattr(progress, "_reporters", {})
    report_progress(1, 10)
    assert capsys.readouterr().err == ""
    assert pickle.loads(pickle.dumps(report_progress)) is report_progress
