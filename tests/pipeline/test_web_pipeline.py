"""The whole pipeline on WARC/WET input (generated here, with the oddities of a real crawl):
every record accounted for per file, web columns in the shards, offsets on the dead letters;
and the opt-in text steps (quality preset, PII, URL blocklist) end to end."""

import json

import pyarrow.parquet as pq
from conftest import PROSE, write_jsonl

from beam_jobs import prepare
from beam_jobs.records import WEB_FIELDS
from tests.web_fixtures import U, write_inputs


def run(inputs, out, *extra):
    return prepare.run(
        [
            "--input",
            str(inputs),
            "--output",
            str(out),
            "--runner",
            "FnApiRunner",
            "--no-report",
            "--no-near-dedup",
            *extra,
        ]
    )


def test_a_crawl_is_accounted_for_record_by_record(tmp_path):
    (tmp_path / "in").mkdir()
    pattern = write_inputs(tmp_path / "in")
    manifest = run(
        pattern, tmp_path / "out", "--lang", "ja", "--extract-timeout", "0.5", "--min-chars", "10"
    )
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["identity_holds"]
    crawl = stats["files"]["crawl-00000.warc.gz"]
    assert crawl["read"] == 14 and crawl["skipped"] == 4
    assert stats["skipped_by_reason"] == {
        "skip_metadata": 1,
        "skip_request": 1,
        "skip_revisit": 1,
        "skip_warcinfo": 3,
    }
    assert {"http_404", "non_html", "lang_mismatch"} <= set(stats["filtered_by_reason"])
    assert {"gzip_corrupt", "extract_timeout"} <= set(stats["rejected_by_reason"])
    rows = (
        pq.read_table(tmp_path / "out" / "train").to_pylist()
        + pq.read_table(tmp_path / "out" / "val").to_pylist()
    )
    urls = {r["url"] for r in rows}  # the ja and p pages hold the same text: one is kept
    assert len(urls) == 2 and U + "w" in urls and urls < {U + "ja", U + "p", U + "w"}
    assert stats["duplicates_by_kind"] == {"exact": 1}
    assert all(r["lang"] == "ja" and r["http_status"] in (200, None) for r in rows)
    assert set(WEB_FIELDS.names) <= set(
        pq.read_schema(tmp_path / "out" / "train" / "train-00000-of-00004.parquet").names
    )
    rejected = pq.read_table(tmp_path / "out" / "rejected").to_pylist()
    assert all(r["offset"] is not None for r in rejected if r["file"].endswith(".warc.gz"))
    assert manifest["web"]["lang"]["langs"] == ["ja"]


def test_pii_is_masked_and_counted(tmp_path):
    docs = [
        {"id": f"d{i}", "text": f"{i}番目。{PROSE} 連絡先は taro{i}@example.com です。"}
        for i in range(4)
    ]
    write_jsonl(tmp_path / "a.jsonl.gz", docs)
    run(tmp_path / "a.jsonl.gz", tmp_path / "out", "--pii", "mask")
    texts = [
        r["text"]
        for split in ("train", "val")
        for r in pq.read_table(tmp_path / "out" / split).to_pylist()
    ]
    assert len(texts) == 4 and all("<EMAIL>" in t and "@" not in t for t in texts)
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["pii_by_kind"] == {"email": 4}
    run(tmp_path / "a.jsonl.gz", tmp_path / "drop", "--pii", "drop")
    stats = json.loads((tmp_path / "drop" / "stats.json").read_text())
    assert stats["filtered_by_reason"] == {"contains_pii": 4}


def test_a_quality_preset_and_a_url_blocklist(tmp_path):
    write_jsonl(tmp_path / "a.jsonl.gz", [{"id": "short", "text": PROSE}])
    run(tmp_path / "a.jsonl.gz", tmp_path / "out", "--quality-preset", "swallow")
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["filtered_by_reason"] == {"swallow_too_short": 1}
    (tmp_path / "in").mkdir()
    pattern = write_inputs(tmp_path / "in")
    (tmp_path / "blocklist.txt").write_text("# test\na.example/p\n")
    run(
        pattern,
        tmp_path / "blocked",
        "--url-blocklist",
        str(tmp_path / "blocklist.txt"),
        "--min-chars",
        "10",
    )
    stats = json.loads((tmp_path / "blocked" / "stats.json").read_text())
    assert stats["files"]["plain.warc"]["filtered_by_reason"] == {"blocked_url": 1}
