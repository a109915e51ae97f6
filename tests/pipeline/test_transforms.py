"""Each stage as a Beam transform, on tiny inputs, with TestPipeline and assert_that."""

import gzip
import json
from collections import Counter

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from conftest import PROSE

from beam_jobs.counts.combiners import BuildVocab, CountNgrams
from beam_jobs.counts.counting import ngrams_of
from beam_jobs.dedup.exact import ExactDedup
from beam_jobs.io.parquet import DOC_SCHEMA, WriteShardedParquet
from beam_jobs.io.read import ReadDocuments, common_base, glob_base
from beam_jobs.outputs.stats import StatsFn
from beam_jobs.text.clean import CleanDocuments
from beam_jobs.text.filters import FilterConfig
from beam_jobs.text.normalize import NormalizeConfig, dedup_key


def local_pipeline():
    return TestPipeline(runner="FnApiRunner")




def test_glob_base_and_common_base():
    assert glob_base("data/ja/*.jsonl.gz") == "data/ja/"
    assert glob_base("gs://b/x/part-*") == "gs://b/x/"
    assert common_base(["data/ja/*.gz", "data/en/*.gz"]) == "data/"


def test_parquet_row_groups_plain_and_gzipped_read_row_by_row(tmp_path):
    texts = [f"row {i}" for i in range(10)]
    pq.write_table(pa.table({"text": texts}), tmp_path / "a.parquet", row_group_size=3)
    (tmp_path / "b.parquet.gz").write_bytes(gzip.compress((tmp_path / "a.parquet").read_bytes()))
    with local_pipeline() as p:
        out = p | ReadDocuments([str(tmp_path / "*")])
        assert_that(out["docs"] | beam.Map(lambda d: (d["id"], d["raw_text"])), equal_to(
            [(f"{name}:{i}", text) for name in ("a.parquet", "b.parquet.gz")
             for i, text in enumerate(texts)]))


def test_read_text_jsonl_and_parquet_with_stable_ids_and_dead_letters(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"\xef\xbb\xbf" + "一行目\n二行目\r\n三行目\n".encode())
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(
        b'\xef\xbb\xbf{"id": "x1", "text": "\xe3\x81\x82", "source": "s"}\n'
        b'{"text": "no id"}\n'
        b'{broken\n'
        b'{"id": "x2", "text": 5}\n'
        b'{"id": "x3"}\n'
        b'\xff\xfe bad utf8\n'
        b'{"id": "x4", "text": "nul\\u0000"}\n'))
    pq.write_table(pa.table({"text": ["p0", "p1"], "id": ["q0", None]}), tmp_path / "c.parquet")
    with local_pipeline() as p:
        out = p | ReadDocuments([str(tmp_path / "*")])
        ids = out["docs"] | "Ids" >> beam.Map(lambda d: (d["id"], d["raw_text"], d["source"]))
        assert_that(ids, equal_to([
            ("a.txt:1", "一行目", "a.txt"), ("a.txt:2", "二行目", "a.txt"),
            ("a.txt:3", "三行目", "a.txt"), ("x1", "あ", "s"),
            ("b.jsonl.gz:2", "no id", "b.jsonl.gz"), ("q0", "p0", "c.parquet"),
            ("c.parquet:1", "p1", "c.parquet")]), label="docs")
        reasons = out["rejected"] | "Reasons" >> beam.Map(
            lambda r: (r["file"], r["line"], r["reason"]))
        assert_that(reasons, equal_to([
            ("b.jsonl.gz", 3, "bad_json"), ("b.jsonl.gz", 4, "non_string_text"),
            ("b.jsonl.gz", 5, "missing_text"), ("b.jsonl.gz", 6, "bad_utf8"),
            ("b.jsonl.gz", 7, "nul_byte")]), label="rejected")
        counts = out["files"] | "Counts" >> beam.Map(lambda f: (f["path"], f["records"]))
        assert_that(counts, equal_to([("a.txt", 3), ("b.jsonl.gz", 7), ("c.parquet", 2)]),
                    label="files")


def test_truncated_gzip_keeps_what_was_read(tmp_path):
    data = gzip.compress("".join(json.dumps({"id": f"d{i}", "text": "テキスト" * 50}) + "\n"
                                 for i in range(200)).encode())
    (tmp_path / "t.jsonl.gz").write_bytes(data[: len(data) // 2])
    with local_pipeline() as p:
        out = p | ReadDocuments([str(tmp_path / "t.jsonl.gz")])
        reasons = out["rejected"] | beam.Map(lambda r: r["reason"])
        assert_that(reasons, equal_to(["unreadable_file"]), label="rejected")
        total = out["files"] | beam.Map(lambda f: f["records"])
        docs = out["docs"] | beam.combiners.Count.Globally()
        both = ((total, docs) | beam.Flatten() | beam.combiners.ToList()
                | beam.Map(lambda xs: max(xs) - min(xs)))
        assert_that(both, equal_to([1]), label="records = docs + 1 rejected")


def test_clean_normalizes_filters_and_counts_tokens():
    records = [{"id": "a", "raw_text": "ｶﾞｲﾄﾞ\u3000" + PROSE, "source": "s", "file": "f",
                "line": 1},
               {"id": "b", "raw_text": "短い", "source": "s", "file": "f", "line": 2}]
    with local_pipeline() as p:
        out = p | beam.Create(records) | CleanDocuments(NormalizeConfig(), FilterConfig())
        docs = out["docs"] | "Docs" >> beam.Map(
            lambda d: (d["id"], d["text"][:4], d["key"][:4], d["n_tokens"] == d["n_chars"]))
        assert_that(docs, equal_to([("a", "ガイド ", "ガイド ", True)]), label="docs")
        filtered = out["filtered"] | "Filtered" >> beam.Map(lambda r: (r["id"], r["reason"]))
        assert_that(filtered, equal_to([("b", "too_short")]), label="filtered")


def test_exact_dedup_keeps_smallest_id():
    texts = {"c": "同じ 文書。", "a": "同じ\n文書", "b": "ＯＴＨＥＲ", "d": "other"}
    docs = [{"id": i, "text": t, "key": dedup_key(t), "file": "f"} for i, t in texts.items()]
    with local_pipeline() as p:
        out = p | beam.Create(docs) | ExactDedup()
        assert_that(out["kept"] | "Kept" >> beam.Map(lambda d: d["id"]),
                    equal_to(["a", "b"]), label="kept")
        assert_that(out["duplicates"], equal_to([
            {"id": "c", "duplicate_of": "a", "kind": "exact", "similarity": 1.0, "file": "f"},
            {"id": "d", "duplicate_of": "b", "kind": "exact", "similarity": 1.0, "file": "f"}]),
            label="duplicates")


def test_ngram_counts_and_vocab_equal_counter(tmp_path):
    texts = ["あいうあい", "ab\nあい", "", "𠮷🙂あ"]
    for tokenizer_path, order in (("packed", 3), ("generic", 4)):
        out_dir = tmp_path / tokenizer_path
        with local_pipeline() as p:
            texts_pc = p | beam.Create(texts)
            infos = texts_pc | CountNgrams(str(out_dir), "char", order, num_shards=3)
            vocab = texts_pc | BuildVocab(str(out_dir), "char", 1, 0)
            assert_that(infos | beam.Map(lambda i: i["shard"]), equal_to([0, 1, 2]),
                        label="every shard written")
            assert_that(vocab | beam.Map(lambda v: v["total_tokens"]),
                        equal_to([sum(map(len, texts))]), label="vocab")
        table = pq.read_table(out_dir / "ngrams").to_pylist()
        got = Counter({tuple(r["ngram"]): r["count"] for r in table})
        want = Counter()
        for text in texts:
            want.update(ngrams_of(list(text), order))
        assert got == want
        vocab = json.loads((out_dir / "vocab.json").read_text())
        assert dict(zip(vocab["tokens"][3:], vocab["counts"][3:])) == Counter("".join(texts))


def test_sharded_writer_is_sorted_complete_and_reports_counts(tmp_path):
    rows = [{"id": f"d{i:02d}", "text": "x" * i, "n_tokens": i, "n_chars": i, "source": "s"}
            for i in range(30)]
    with local_pipeline() as p:
        infos = (p | beam.Create(rows)
                 | WriteShardedParquet(str(tmp_path), "train", "train", 4, DOC_SCHEMA,
                                       sum_columns=("n_tokens",)))
        assert_that(infos | beam.Map(lambda i: i["path"]),
                    equal_to([f"train/train-0000{s}-of-00004.parquet" for s in range(4)]))
    total = 0
    for path in sorted((tmp_path / "train").glob("*.parquet")):
        ids = pq.read_table(path).column("id").to_pylist()
        assert ids == sorted(ids)
        total += len(ids)
    assert total == 30


def test_stats_identity():
    events = [("read", "f", 3), ("read", "g", 2), ("rejected", "bad_json", "f"),
              ("filtered", "too_short", "f"), ("duplicate", "exact", "g"),
              ("kept", "train", 100, 100, "f"), ("kept", "val", 3, 3, "g")]
    with local_pipeline() as p:
        stats = p | beam.Create(events) | beam.CombineGlobally(StatsFn())
        assert_that(stats | beam.Map(lambda s: (
            s["read"], s["kept"], s["filtered"], s["duplicates"], s["rejected"],
            s["identity_holds"], s["splits"]["train"]["length_histogram"], s["files"]["g"])),
            equal_to([(5, 2, 1, 1, 1, True, {"64": 1}, {
                "read": 2, "kept": 1, "filtered": 0, "duplicates": 1, "rejected": 0})]))
