"""Nothing lost, nothing invented: a corpus of everything real data throws at a pipeline."""

import gzip
import json

import pyarrow.parquet as pq
import pytest
from conftest import PROSE

from beam_jobs.prepare import main, run

# Distinct texts (public-domain openings), so near dedup leaves each of them alone.
MELOS = (
    "メロスは激怒した。必ず、かの邪智暴虐の王を除かなければならぬと決意した。メロスには政治が"
    "わからぬ。メロスは、村の牧人である。笛を吹き、羊と遊んで暮して来た。"
)
BOTCHAN = (
    "親譲りの無鉄砲で小供の時から損ばかりしている。小学校に居る時分学校の二階から飛び降りて"
    "一週間ほど腰を抜かした事がある。なぜそんな無闇をしたと聞く人があるかも知れぬ。"
)
KUMO = (
    "ある日の事でございます。御釈迦様は極楽の蓮池のふちを、独りでぶらぶら御歩きになって"
    "いらっしゃいました。池の中に咲いている蓮の花は、みんな玉のようにまっ白で。"
)
YUKI = (
    "国境の長いトンネルを抜けると雪国であった。夜の底が白くなった。信号所に汽車が止まった。"
    "向側の座席から娘が立って来て、島村の前のガラス窓を落した。雪の冷気が流れこんだ。"
)


def jl(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode() + b"\n"


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    lines = [
        b"\xef\xbb\xbf" + jl({"id": "bom", "text": PROSE + "一"}),  # 1 BOM, kept
        b'{"id": "bad-utf8", "text": "\xff\xfe\xfa ' + PROSE.encode() + b'"}\n',  # 2 bad_utf8
        b'{"id": "nul-raw", "text": "a\x00b"}\n',  # 3 nul_byte
        jl({"id": "nul-escaped", "text": PROSE + "\x00"}),  # 4 nul_byte
        jl({"id": "crlf", "text": MELOS}).replace(b"\n", b"\r\n"),  # 5 kept
        jl({"id": "ls", "text": BOTCHAN + "\u2028三\u2029四"}),  # 6 kept
        b'{"id": "broken", "text": "unterminated\n',  # 7 bad_json
        jl({"id": "number", "text": 42}),  # 8 non_string_text
        jl({"id": "list", "text": ["a"]}),  # 9 non_string_text
        jl({"id": "null", "text": None}),  # 10 missing_text
        jl({"id": "missing"}),  # 11 missing_text
        jl(["not", "an", "object"]),  # 12 bad_json
        jl({"id": "empty", "text": ""}),  # 13 too_short
        jl({"id": "spaces", "text": " \u3000\t\n  "}),  # 14 too_short
        jl({"id": "huge", "text": "あ" * 600_000}),  # 15 too_large
        jl({"id": "marks", "text": KUMO + "e\u0301\u0308🙂‍↔️👩🏽‍💻🇯🇵" * 3}),  # 16 kept
        jl(
            {
                "id": "rtl",
                "text": "שלום עולם, זהו טקסט בעברית עם מספיק אותיות כדי לעבור את "
                "מסנן האורך. مرحبا بالعالم",
            }
        ),  # 17 wrong_script
        jl({"id": "bom-dup", "text": PROSE + "一"}),  # 18 exact duplicate
        b'{"id": "truncated", "text": "' + PROSE.encode()[:39],  # 19 bad_json
    ]
    (d / "hostile.jsonl").write_bytes(b"".join(lines))
    (d / "lines.txt").write_bytes(
        b"\xef\xbb\xbf"
        + (YUKI + "\r\n").encode()
        + b"\xc3\x28 bad\n"
        + (MELOS[::-1] + "\n").encode()
    )
    full = gzip.compress(
        b"".join(jl({"id": f"gz{i}", "text": PROSE + str(i) * 3}) for i in range(300))
    )
    (d / "truncated.jsonl.gz").write_bytes(full[: len(full) // 2])
    (d / "empty.jsonl").write_bytes(b"")
    # JSON escapes can spell lone surrogates, which no UTF-8 writer (nor Beam's coder) takes.
    escaped = (
        b'{"id": "surrogate-text", "text": "\\ud800 '
        + MELOS.encode()
        + b'"}\n'
        + b'{"id": "id-\\udfff", "text": "'
        + BOTCHAN.encode()
        + b'"}\n'
        + b'{"id": "surrogate-source", "source": "\\ud83d", "text": "'
        + KUMO.encode()
        + b'"}\n'
    )
    (d / "surrogates.jsonl").write_bytes(escaped)
    return d


@pytest.fixture(scope="module")
def hostile_run(hostile_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile_out")
    run(
        [
            "--input",
            str(hostile_dir / "*"),
            "--output",
            str(out),
            "--runner",
            "FnApiRunner",
            "--max-record-bytes",
            "1000000",
            "--num-shards",
            "2",
        ]
    )
    return out


def test_every_record_is_accounted_for_per_file(hostile_run):
    stats = json.loads((hostile_run / "stats.json").read_text())
    assert stats["identity_holds"]
    files = stats["files"]
    assert files["hostile.jsonl"]["read"] == 19
    assert files["lines.txt"]["read"] == 3
    truncated = files["truncated.jsonl.gz"]
    assert truncated["rejected"] == 1  # the break itself
    assert truncated["kept"] + truncated["duplicates"] > 100  # what came before it is kept
    for counts in files.values():
        assert counts["read"] == (
            counts["kept"] + counts["filtered"] + counts["duplicates"] + counts["rejected"]
        )
    assert "empty.jsonl" in {
        f["path"] for f in json.loads((hostile_run / "manifest.json").read_text())["input"]["files"]
    }


def test_rejected_rows_carry_file_line_and_reason(hostile_run):
    rows = pq.read_table(hostile_run / "rejected").to_pylist()
    got = {(r["file"], r["line"]): r["reason"] for r in rows}
    assert {k: v for k, v in got.items() if k[0] == "hostile.jsonl"} == {
        ("hostile.jsonl", 2): "bad_utf8",
        ("hostile.jsonl", 3): "nul_byte",
        ("hostile.jsonl", 4): "nul_byte",
        ("hostile.jsonl", 7): "bad_json",
        ("hostile.jsonl", 8): "non_string_text",
        ("hostile.jsonl", 9): "non_string_text",
        ("hostile.jsonl", 10): "missing_text",
        ("hostile.jsonl", 11): "missing_text",
        ("hostile.jsonl", 12): "bad_json",
        ("hostile.jsonl", 15): "too_large",
        ("hostile.jsonl", 19): "bad_json",
    }
    assert got[("lines.txt", 2)] == "bad_utf8"
    surrogates = [r for r in rows if r["file"] == "surrogates.jsonl"]
    assert [(r["line"], r["reason"]) for r in surrogates] == [(i, "bad_utf8") for i in (1, 2, 3)]
    assert [r["id"] for r in surrogates] == ["surrogate-text", "id-\\udfff", "surrogate-source"]
    assert [r["reason"] for r in rows if r["file"] == "truncated.jsonl.gz"] == ["unreadable_file"]
    assert all(r["detail"] for r in rows)


def test_what_survives(hostile_run):
    kept = {
        r["id"]: r["text"]
        for split in ("train", "val")
        for r in pq.read_table(hostile_run / split).to_pylist()
    }
    assert {"bom", "crlf", "ls", "marks", "lines.txt:1", "lines.txt:3"} <= set(kept)
    assert not {"rtl", "empty", "spaces", "bom-dup"} & set(kept)
    assert "\r" not in kept["crlf"] and "\u2028" not in kept["ls"]
    assert "🙂" in kept["marks"] and "é" in kept["marks"]
    stats = json.loads((hostile_run / "stats.json").read_text())
    assert stats["filtered_by_reason"]["too_short"] == 2
    assert stats["filtered_by_reason"]["wrong_script"] == 1
    assert stats["duplicates_by_kind"]["exact"] == 1


def test_replace_decoding_keeps_bad_utf8_records(hostile_dir, tmp_path):
    run(
        [
            "--input",
            str(hostile_dir / "lines.txt"),
            "--output",
            str(tmp_path),
            "--runner",
            "FnApiRunner",
            "--decode-errors",
            "replace",
            "--min-chars",
            "1",
            "--min-script-ratio",
            "0",
            "--min-letter-ratio",
            "0",
        ]
    )
    stats = json.loads((tmp_path / "stats.json").read_text())
    # Read, not rejected; the line that is one sixth U+FFFD ("\ufffd( bad") is then filtered.
    assert stats["rejected"] == 0 and stats["kept"] == 2
    assert stats["filtered_by_reason"] == {"replacement_chars": 1}


def test_glob_that_matches_nothing(tmp_path, capsys):
    assert main(["--input", str(tmp_path / "*.jsonl"), "--output", str(tmp_path / "o")]) == 2
    assert "matches no file" in capsys.readouterr().err


def test_a_repeated_id_keeps_its_first_record_and_rejects_the_others(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(jl({"id": "x", "text": MELOS}))
    (tmp_path / "b.jsonl").write_bytes(
        jl({"id": "x", "text": BOTCHAN})
        + jl({"id": "a", "text": BOTCHAN})
        + jl({"id": "x", "text": YUKI})
    )
    out = tmp_path / "out"
    run(
        [
            "--input",
            str(tmp_path / "*.jsonl"),
            "--output",
            str(out),
            "--runner",
            "FnApiRunner",
            "--num-shards",
            "3",
            "--val-fraction",
            "0",
        ]
    )
    kept = {r["id"]: r["text"] for r in pq.read_table(out / "train").to_pylist()}
    assert kept == {"x": MELOS, "a": BOTCHAN}  # b.jsonl's x is not a copy of a
    rejected = {
        (r["file"], r["line"]): (r["id"], r["reason"])
        for r in pq.read_table(out / "rejected").to_pylist()
    }
    assert rejected == {
        ("b.jsonl", 1): ("x", "duplicate_id"),
        ("b.jsonl", 3): ("x", "duplicate_id"),
    }
    assert pq.read_table(out / "duplicates").num_rows == 0
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["read"], stats["kept"], stats["rejected"]) == (4, 2, 2)
    assert stats["identity_holds"]


def test_repeated_ids_give_the_same_files_in_and_out_of_process(tmp_path):
    # Four files numbering their records alike: 30 duplicate_id rows, all with an empty `raw`,
    # arriving from different blocks and workers; the rejected table orders them by location.
    texts = [MELOS, BOTCHAN, KUMO, YUKI]
    for f, text in enumerate(texts):
        (tmp_path / f"part{f}.jsonl").write_bytes(
            b"".join(jl({"id": str(i), "text": f"{text}{f}-{i}"}) for i in range(10))
        )
    outs = []
    for mode in (
        ["--direct_num_workers=1"],
        ["--direct_num_workers=2", "--direct_running_mode=multi_processing"],
    ):
        outs.append(tmp_path / f"out{len(outs)}")
        run(
            [
                "--input",
                str(tmp_path / "*.jsonl"),
                "--output",
                str(outs[-1]),
                "--runner",
                "FnApiRunner",
                "--num-shards",
                "2",
                "--read-block-mb",
                "0.0005",
                "--no-near-dedup",
                *mode,
            ]
        )
    rejected = pq.read_table(outs[0] / "rejected").to_pylist()
    assert [(r["file"], r["line"]) for r in rejected] == [
        (f"part{f}.jsonl", i + 1) for f in (1, 2, 3) for i in range(10)
    ]
    for part in ("rejected", "train", "val"):
        for path in sorted((outs[0] / part).iterdir()):
            assert (outs[1] / part / path.name).read_bytes() == path.read_bytes()
