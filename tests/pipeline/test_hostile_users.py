"""What a hostile but realistic user did to the command line (issue 18), each as a test that
failed before its fix: flags, globs, resumes, locks, line ends, sizes, encodings, symlinks."""

import json
import os
import tracemalloc

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import PROSE, write_jsonl

from beam_jobs import prepare
from beam_jobs.io.lines import iter_lines
from beam_jobs.outputs import finish
from beam_jobs.outputs.lock import LOCK, OutputLock


def docs(n: int, prefix: str = "d", text: str = PROSE) -> list[dict]:
    return [{"id": f"{prefix}{i:03d}", "text": f"{prefix}{i}番目。{text}"} for i in range(n)]


def flags(inputs, out, *extra) -> list[str]:
    inputs = [str(p) for p in (inputs if isinstance(inputs, list) else [inputs])]
    return [
        "--input",
        *inputs,
        "--output",
        str(out),
        "--runner",
        "FnApiRunner",
        "--no-report",
        "--no-near-dedup",
        *extra,
    ]


def stats_of(out) -> dict:
    return json.loads((out / "stats.json").read_text())


def texts_of(out) -> dict:
    return {
        r["id"]: r["text"]
        for split in ("train", "val")
        for r in pq.read_table(out / split).to_pylist()
    }


# ── flags ────────────────────────────────────────────────────────────────────────────────────


def test_an_unquoted_glob_reads_every_file(tmp_path):
    paths = [write_jsonl(tmp_path / f"f{i}.jsonl.gz", docs(5, f"f{i}-")) for i in range(3)]
    prepare.run(flags(paths, tmp_path / "out"))  # what the shell makes of --input DIR/*.gz
    assert stats_of(tmp_path / "out")["read"] == 15


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--val-fractoin", "0.5"], "unknown flag --val-fractoin; did you mean --val-fraction?"),
        (["stray.jsonl.gz"], "unexpected argument 'stray.jsonl.gz'"),
        (["--max-record-bytes", "0"], "--max-record-bytes must be at least 1"),
        (["--duplicate-ngram-size", "0"], "--duplicate-ngram-size must be at least 1"),
        (["--min-chars", "500", "--max-chars", "100"], "--min-chars 500 is above --max-chars 100"),
        (["--text-field", ""], "--text-field must name a field"),
        (["--num-shards", "x"], "argument --num-shards: invalid int value: 'x'"),
    ],
)
def test_bad_flags_are_one_line_errors_before_any_work(tmp_path, capsys, extra, message):
    src = write_jsonl(tmp_path / "a.jsonl.gz", docs(3))
    assert prepare.main(flags(src, tmp_path / "out", *extra)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {message}"] or (len(err) == 1 and message in err[0]), err
    assert not (tmp_path / "out").exists()


def test_an_output_path_that_is_a_file_is_refused(tmp_path, capsys):
    src = write_jsonl(tmp_path / "a.jsonl.gz", docs(3))
    (tmp_path / "out").write_text("keep me")
    assert prepare.main(flags(src, tmp_path / "out")) == 2
    assert "is a file, not a directory" in capsys.readouterr().err
    assert (tmp_path / "out").read_text() == "keep me"


# ── resume and lock ─────────────────────────────────────────────────────────────────────────


def test_resume_rereads_an_input_edited_with_its_size_and_mtime_restored(tmp_path, monkeypatch):
    src = tmp_path / "in" / "a.jsonl"
    src.parent.mkdir()
    write_jsonl(src, docs(6), gz=False)
    out = tmp_path / "out"
    with monkeypatch.context() as m:  # the run dies after the dedup stage
        m.setattr(finish, "draw_report", lambda *a: (_ for _ in ()).throw(RuntimeError("x")))
        with pytest.raises(RuntimeError):
            prepare.run(flags(src, out, "--report"))
    stat = src.stat()
    edited = src.read_text().replace("番目", "番め")  # same length in UTF-8 bytes
    assert len(edited.encode()) == stat.st_size
    src.write_text(edited)
    os.utime(src, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as cp -p / rsync -t / touch -r
    reused = []
    real = prepare.reuse_dedup_stage
    monkeypatch.setattr(prepare, "reuse_dedup_stage", lambda *a: reused.append(1) or real(*a))
    manifest = prepare.run(flags(src, out, "--resume"))
    assert not reused
    assert all("番め" in t for t in texts_of(out).values())
    fresh = prepare.run(flags(src, tmp_path / "fresh"))
    assert manifest["input"]["fingerprint"] == fresh["input"]["fingerprint"]


def test_resume_with_unchanged_inputs_still_reuses_the_stage(tmp_path, monkeypatch):
    src = write_jsonl(tmp_path / "a.jsonl", docs(6), gz=False)
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        m.setattr(finish, "draw_report", lambda *a: (_ for _ in ()).throw(RuntimeError("x")))
        with pytest.raises(RuntimeError):
            prepare.run(flags(src, out, "--report"))
    reused = []
    real = prepare.reuse_dedup_stage
    monkeypatch.setattr(prepare, "reuse_dedup_stage", lambda *a: reused.append(1) or real(*a))
    prepare.run(flags(src, out, "--resume"))
    assert reused == [1]


def test_a_second_run_is_refused_while_one_holds_the_directory(tmp_path, capsys):
    src = write_jsonl(tmp_path / "a.jsonl.gz", docs(3))
    out = tmp_path / "out"
    with OutputLock(str(out)):  # another run, alive, in this very process
        assert prepare.main(flags(src, out)) == 2
    assert "is in use by another run" in capsys.readouterr().err
    assert not (out / "manifest.json").exists()
    assert prepare.main(flags(src, out)) == 0  # once it is gone, the directory is free
    assert not (out / LOCK).exists()


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl.gz", docs(3))
    out = tmp_path / "out"
    out.mkdir()
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    import socket
    import time

    (out / LOCK).write_text(
        json.dumps(
            {
                "run_id": "gone",
                "host": socket.gethostname(),
                "pid": dead,
                "started": time.time(),
                "heartbeat": time.time(),
            }
        )
    )
    assert prepare.main(flags(src, out)) == 0


def test_a_run_that_lost_its_lock_writes_no_manifest(tmp_path, monkeypatch):
    src = write_jsonl(tmp_path / "a.jsonl.gz", docs(3))
    out = tmp_path / "out"

    def taken_over(output_dir, *args):  # another run takes the directory over mid-run
        (out / LOCK).write_text(json.dumps({"run_id": "other", "heartbeat": 0}))
        return []

    monkeypatch.setattr(finish, "draw_report", taken_over)
    with pytest.raises(Exception, match="took over"):
        prepare.run(flags(src, out, "--report"))
    assert not (out / "manifest.json").exists()


def test_temporary_files_of_a_killed_run_are_removed(tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl.gz", docs(3))
    out = tmp_path / "out"
    prepare.run(flags(src, out))
    (out / "manifest.json.tmp-0123456789ab").write_text("{")
    prepare.run(flags(src, out, "--overwrite"))
    assert not list(out.glob("*.tmp-*"))


# ── what a record is ────────────────────────────────────────────────────────────────────────


def test_lone_cr_line_ends_are_records_in_text_and_json_lines(tmp_path):
    (tmp_path / "a.txt").write_bytes("\r".join(f"行{i}: {PROSE}" for i in range(20)).encode())
    (tmp_path / "b.jsonl").write_bytes(
        "\r".join(json.dumps(d, ensure_ascii=False) for d in docs(20, "j")).encode()
    )
    prepare.run(flags(str(tmp_path / "*"), tmp_path / "out", "--min-chars", "1"))
    stats = stats_of(tmp_path / "out")
    assert stats["files"]["a.txt"]["read"] == stats["files"]["b.jsonl"]["read"] == 20
    assert stats["kept"] == 40 and stats["rejected"] == 0


def test_the_size_limit_applies_while_reading(tmp_path):
    big = {"id": "big", "text": "あ" * (3 << 20)}  # 9 MB of UTF-8
    write_jsonl(tmp_path / "a.jsonl.gz", [*docs(2), big, *docs(2, "e")])
    prepare.run(
        flags(tmp_path / "a.jsonl.gz", tmp_path / "out", "--max-record-bytes", str(1 << 20))
    )
    stats = stats_of(tmp_path / "out")
    assert stats["rejected_by_reason"] == {"too_large": 1} and stats["kept"] == 4
    rejected = pq.read_table(tmp_path / "out" / "rejected").to_pylist()
    assert [(r["line"], r["reason"]) for r in rejected] == [(3, "too_large")]


def test_a_long_line_is_never_held_whole():
    chunk = b"x" * (1 << 20)
    pieces = iter([b"short\n", *([chunk] * 64), b"\nafter\n"])  # a 64 MB line

    def read(_n):
        return next(pieces, b"")

    tracemalloc.start()
    lines = list(iter_lines(read, 1 << 20))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert lines == [b"short", 64 << 20, b"after"]
    assert peak < 8 << 20


# ── encodings and odd files ─────────────────────────────────────────────────────────────────


def test_utf16_is_detected_and_decoded_with_encoding_auto(tmp_path, capsys):
    text = "\n".join(f"{i}番目。{PROSE}" for i in range(10)) + "\n"
    (tmp_path / "u.txt").write_bytes(text.encode("utf-16"))
    assert prepare.main(flags(tmp_path / "u.txt", tmp_path / "strict")) == 0
    stats = stats_of(tmp_path / "strict")
    assert stats["read"] == 1 and stats["rejected_by_reason"] == {"wrong_encoding": 1}
    err = capsys.readouterr().err
    assert "no document was kept" in err and "--encoding" in err
    prepare.run(flags(tmp_path / "u.txt", tmp_path / "auto", "--encoding", "auto"))
    assert sorted(texts_of(tmp_path / "auto").values()) == sorted(text.splitlines())


def test_shift_jis_text_with_encoding_cp932(tmp_path):
    lines = [f"{i}番目。{PROSE}" for i in range(10)]
    (tmp_path / "s.txt").write_bytes("\r\n".join(lines).encode("cp932"))
    prepare.run(flags(tmp_path / "s.txt", tmp_path / "out", "--encoding", "cp932"))
    assert sorted(texts_of(tmp_path / "out").values()) == sorted(lines)


def test_binary_parquet_text_is_utf8_under_the_same_rules(tmp_path):
    texts = [f"{i}番目。{PROSE}".encode() for i in range(4)] + [b"\xff\xfe bad"]
    pq.write_table(
        pa.table({"id": [f"p{i}" for i in range(5)], "text": texts}), tmp_path / "b.parquet"
    )
    prepare.run(flags(tmp_path / "b.parquet", tmp_path / "out"))
    stats = stats_of(tmp_path / "out")
    assert stats["kept"] == 4 and stats["rejected_by_reason"] == {"bad_utf8": 1}


def test_dangling_symlinks_and_loops_are_dead_letters(tmp_path):
    write_jsonl(tmp_path / "a.jsonl.gz", docs(3))
    (tmp_path / "dangling.jsonl.gz").symlink_to(tmp_path / "nowhere.jsonl.gz")
    (tmp_path / "loop1.jsonl.gz").symlink_to(tmp_path / "loop2.jsonl.gz")
    (tmp_path / "loop2.jsonl.gz").symlink_to(tmp_path / "loop1.jsonl.gz")
    prepare.run(flags(str(tmp_path / "*.jsonl.gz"), tmp_path / "out"))
    stats = stats_of(tmp_path / "out")
    assert stats["identity_holds"] and stats["read"] == 6
    assert stats["rejected_by_reason"] == {"unreadable_file": 3}
    rows = pq.read_table(tmp_path / "out" / "rejected").to_pylist()
    assert sorted(r["file"] for r in rows) == [
        "dangling.jsonl.gz",
        "loop1.jsonl.gz",
        "loop2.jsonl.gz",
    ]


def test_null_text_and_non_scalar_ids_are_named_dead_letters(tmp_path):
    records = [
        {"id": "ok", "text": PROSE},
        {"id": "n", "text": None},
        {"id": {"x": 1}, "text": PROSE},
        {"id": [1], "text": PROSE},
    ]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    prepare.run(flags(tmp_path / "a.jsonl", tmp_path / "out"))
    rows = {
        r["line"]: (r["reason"], r["detail"])
        for r in pq.read_table(tmp_path / "out" / "rejected").to_pylist()
    }
    assert rows == {
        2: ("missing_text", "'text' is null"),
        3: ("bad_id", "'id' is dict, not a string or number"),
        4: ("bad_id", "'id' is list, not a string or number"),
    }


def test_most_of_a_file_removed_by_one_filter_is_said(tmp_path, capsys):
    english = [
        {"id": f"e{i}", "text": "An English page about the settings dialog. " * 5} for i in range(6)
    ]
    write_jsonl(tmp_path / "en.jsonl.gz", english + docs(2))
    assert prepare.main(flags(tmp_path / "en.jsonl.gz", tmp_path / "out")) == 0
    err = capsys.readouterr().err
    assert "en.jsonl.gz: 6 of 8 records filtered as wrong_script (75%); see --scripts" in err
    warnings = stats_of(tmp_path / "out")["warnings"]
    assert any("wrong_script" in w for w in warnings)
