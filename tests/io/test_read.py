"""Reading text, JSON Lines and Parquet into `RawRecord`s with stable ids and dead letters."""

import gzip
import json

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_jobs.io.files import common_base, glob_base
from beam_jobs.io.read import ReadConfig, ReadDocuments


def local_pipeline():
    return TestPipeline(runner="FnApiRunner")


def read(pattern: str) -> ReadDocuments:
    return ReadDocuments(ReadConfig((pattern,)))


def test_glob_base_and_common_base():
    assert glob_base("data/ja/*.jsonl.gz") == "data/ja/"
    assert glob_base("gs://b/x/part-*") == "gs://b/x/"
    assert common_base(["data/ja/*.gz", "data/en/*.gz"]) == "data/"


def test_parquet_row_groups_plain_and_gzipped_read_row_by_row(tmp_path):
    texts = [f"row {i}" for i in range(10)]
    pq.write_table(pa.table({"text": texts}), tmp_path / "a.parquet", row_group_size=3)
    (tmp_path / "b.parquet.gz").write_bytes(gzip.compress((tmp_path / "a.parquet").read_bytes()))
    with local_pipeline() as p:
        out = p | read(str(tmp_path / "*"))
        assert_that(
            out["docs"] | beam.Map(lambda d: (d.id, d.raw_text)),
            equal_to(
                [
                    (f"{name}:{i}", text)
                    for name in ("a.parquet", "b.parquet.gz")
                    for i, text in enumerate(texts)
                ]
            ),
        )


def test_read_text_jsonl_and_parquet_with_stable_ids_and_dead_letters(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"\xef\xbb\xbf" + "一行目\n二行目\r\n三行目\n".encode())
    (tmp_path / "b.jsonl.gz").write_bytes(
        gzip.compress(
            b'\xef\xbb\xbf{"id": "x1", "text": "\xe3\x81\x82", "source": "s"}\n'
            b'{"text": "no id"}\n'
            b"{broken\n"
            b'{"id": "x2", "text": 5}\n'
            b'{"id": "x3"}\n'
            b"\xff\xfe bad utf8\n"
            b'{"id": "x4", "text": "nul\\u0000"}\n'
        )
    )
    pq.write_table(pa.table({"text": ["p0", "p1"], "id": ["q0", None]}), tmp_path / "c.parquet")
    with local_pipeline() as p:
        out = p | read(str(tmp_path / "*"))
        ids = out["docs"] | "Ids" >> beam.Map(lambda d: (d.id, d.raw_text, d.source))
        assert_that(
            ids,
            equal_to(
                [
                    ("a.txt:1", "一行目", "a.txt"),
                    ("a.txt:2", "二行目", "a.txt"),
                    ("a.txt:3", "三行目", "a.txt"),
                    ("x1", "あ", "s"),
                    ("b.jsonl.gz:2", "no id", "b.jsonl.gz"),
                    ("q0", "p0", "c.parquet"),
                    ("c.parquet:1", "p1", "c.parquet"),
                ]
            ),
            label="docs",
        )
        reasons = out["rejected"] | "Reasons" >> beam.Map(lambda r: (r.file, r.line, r.reason))
        assert_that(
            reasons,
            equal_to(
                [
                    ("b.jsonl.gz", 3, "bad_json"),
                    ("b.jsonl.gz", 4, "non_string_text"),
                    ("b.jsonl.gz", 5, "missing_text"),
                    ("b.jsonl.gz", 6, "bad_utf8"),
                    ("b.jsonl.gz", 7, "nul_byte"),
                ]
            ),
            label="rejected",
        )
        counts = out["files"] | "Counts" >> beam.Map(lambda f: (f.path, f.records))
        assert_that(
            counts, equal_to([("a.txt", 3), ("b.jsonl.gz", 7), ("c.parquet", 2)]), label="files"
        )


def test_truncated_gzip_keeps_what_was_read(tmp_path):
    data = gzip.compress(
        "".join(
            json.dumps({"id": f"d{i}", "text": "テキスト" * 50}) + "\n" for i in range(200)
        ).encode()
    )
    (tmp_path / "t.jsonl.gz").write_bytes(data[: len(data) // 2])
    with local_pipeline() as p:
        out = p | read(str(tmp_path / "t.jsonl.gz"))
        reasons = out["rejected"] | beam.Map(lambda r: r.reason)
        assert_that(reasons, equal_to(["unreadable_file"]), label="rejected")
        total = out["files"] | beam.Map(lambda f: f.records)
        docs = out["docs"] | beam.combiners.Count.Globally()
        both = (
            (total, docs)
            | beam.Flatten()
            | beam.combiners.ToList()
            | beam.Map(lambda xs: max(xs) - min(xs))
        )
        assert_that(both, equal_to([1]), label="records = docs + 1 rejected")
