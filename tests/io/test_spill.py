"""Documents never cross a shuffle: files read in blocks of whole lines, documents spilled to
Parquet where they were cleaned, and train/val shards built from the spill row groups."""

import gzip
import hashlib
import json
import zlib

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_jobs.dedup.exact import key_hash
from beam_jobs.io.parquet import TableFile, WriteShardedParquet, shard_name
from beam_jobs.io.read import BLOCK_BYTES, ReadConfig, ReadDocuments
from beam_jobs.io.shards import WriteSplitShards
from beam_jobs.io.spill import KeysAtPlaces, SpillDocuments, remove_unreferenced
from beam_jobs.records import (
    DOC_SCHEMA,
    DedupRecord,
    Document,
    InputFile,
    KeptDocument,
    RawRecord,
    ShardFile,
)
from beam_jobs.split.assign import assign_split, shard_of
from beam_jobs.text.normalize import dedup_key


def local_pipeline():
    return TestPipeline(runner="FnApiRunner")


def counter(result, name: str) -> int:
    found = result.metrics().query(MetricsFilter().with_name(name))["counters"]
    return sum(c.committed for c in found)


# ── reading in blocks ───────────────────────────────────────────────────────────────────────

JSONL = "".join(
    [
        '{"id": "j1", "text": "一つ目の文書", "source": "src"}\n',
        "\n",  # an empty line: not JSON
        '{"text": "idのない行"}\r\n',  # CRLF, and an id generated from the location
        '{"id": "j4", "text": "改行\\r\\nを含む"}\n',
        "{broken\n",
        '{"id": 7, "text": "数値のid"}\n',
        '{"id": "j7", "text": "最後の行"}',  # no line break at the end of the file
    ]
).encode()
TEXT = "\ufeff一行目\n\n二行目\r\n三行\r目\n最終行".encode()


def jsonl_docs(rel: str) -> list[RawRecord]:
    def doc(doc_id, text, line, source=rel):
        return RawRecord(doc_id, text, source, rel, line)

    return [
        doc("j1", "一つ目の文書", 1, "src"),
        doc(f"{rel}:3", "idのない行", 3),
        doc("j4", "改行\r\nを含む", 4),
        doc("7", "数値のid", 6),
        doc("j7", "最後の行", 7),
    ]


EXPECTED_DOCS = (
    jsonl_docs("a.jsonl")
    + jsonl_docs("b.jsonl.gz")
    + [
        RawRecord(f"c.txt:{line}", text, "c.txt", "c.txt", line)
        # a lone CR ends a line too (the universal-newline rule): 三行 and 目 are two records
        for line, text in (
            (1, "一行目"),
            (2, ""),
            (3, "二行目"),
            (4, "三行"),
            (5, "目"),
            (6, "最終行"),
        )
    ]
)
EXPECTED_REJECTED = [
    (rel, line, "bad_json") for rel in ("a.jsonl", "b.jsonl.gz") for line in (2, 5)
]
EXPECTED_FILES = [
    InputFile("a.jsonl", 7, hashlib.sha256(JSONL).hexdigest()),
    InputFile("b.jsonl.gz", 7, hashlib.sha256(JSONL).hexdigest()),
    InputFile("c.txt", 6, hashlib.sha256(TEXT).hexdigest()),
]


@pytest.mark.parametrize("block_bytes", [1, 40, BLOCK_BYTES])
def test_blocks_of_any_size_read_the_same_records(tmp_path, block_bytes):
    (tmp_path / "a.jsonl").write_bytes(JSONL)
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(JSONL, mtime=0))
    (tmp_path / "c.txt").write_bytes(TEXT)
    p = local_pipeline()
    out = p | ReadDocuments(ReadConfig((str(tmp_path / "*"),), block_bytes=block_bytes))
    assert_that(out["docs"], equal_to(EXPECTED_DOCS), label="docs")
    reasons = out["rejected"] | beam.Map(lambda r: (r.file, r.line, r.reason))
    assert_that(reasons, equal_to(EXPECTED_REJECTED), label="rejected")
    assert_that(out["files"], equal_to(EXPECTED_FILES), label="files")
    result = p.run()
    result.wait_until_finish()
    blocks = counter(result, "blocks")
    if block_bytes == 1:
        assert blocks == 7 + 7 + 6  # one block per line
    elif block_bytes == 40:
        assert 3 < blocks < 19
    else:
        assert blocks == 3  # one block per file


@pytest.mark.parametrize("block_bytes", [50, BLOCK_BYTES])
def test_truncated_gzip_in_blocks_keeps_every_record_before_the_break(tmp_path, block_bytes):
    lines = [
        json.dumps({"id": f"d{i:03d}", "text": f"テキスト{i}" * 40}) + "\n" for i in range(300)
    ]
    lines[5] = "{broken\n"
    full = gzip.compress("".join(lines).encode(), mtime=0)
    data = full[: len(full) * 2 // 3]
    (tmp_path / "t.jsonl.gz").write_bytes(data)
    # Whole lines before the break, by an independent decompression of what is there.
    whole = zlib.decompressobj(wbits=31).decompress(data).count(b"\n")
    assert 10 < whole < 300
    with local_pipeline() as p:
        out = p | ReadDocuments(
            ReadConfig((str(tmp_path / "t.jsonl.gz"),), block_bytes=block_bytes)
        )
        ids = out["docs"] | beam.Map(lambda d: (d.id, d.line))
        assert_that(
            ids, equal_to([(f"d{i:03d}", i + 1) for i in range(whole) if i != 5]), label="docs"
        )
        reasons = out["rejected"] | beam.Map(lambda r: (r.file, r.line, r.reason))
        assert_that(
            reasons,
            equal_to([("t.jsonl.gz", 6, "bad_json"), ("t.jsonl.gz", whole + 1, "unreadable_file")]),
            label="rejected",
        )
        records = out["files"] | beam.Map(lambda f: (f.path, f.records))
        assert_that(records, equal_to([("t.jsonl.gz", whole + 1)]), label="files")
        read = (
            (out["docs"], out["rejected"])
            | "All" >> beam.Flatten()
            | beam.combiners.Count.Globally()
        )
        assert_that(read, equal_to([whole + 1]), label="docs + rejected = records")


# ── spilling ────────────────────────────────────────────────────────────────────────────────


def make_doc(doc_id: str, i: int, text: str | None = None) -> Document:
    text = f"文書{i}番の本文です。" + "あ" * (i % 7) if text is None else text
    return Document(
        doc_id,
        text,
        dedup_key(text),
        len(text),
        i % 5 + 1,
        None if i % 4 == 3 else f"src{i % 2}",
        f"f{i % 3}.jsonl",
        i + 1,
        (i, i * 7 % 11, 3) if i % 2 == 0 else None,
    )


def make_docs(n: int) -> list[Document]:
    docs = [make_doc(f"doc-{i:03d}", i) for i in range(n)]
    return sorted(docs, key=lambda d: hashlib.sha256(d.id.encode()).digest())  # shuffled


def check_spill(records, infos, out_dir, docs, num_shards):
    """Every document in exactly one spill file, in the row group of its shard, sorted by id;
    each record names the spill file that holds its document."""
    by_id = {d.id: d for d in docs}
    assert len(infos) >= 3, infos  # max_bytes is small: several spill files
    assert sum(info.rows for info in infos) == len(docs)
    spilled, largest = {}, 0
    for info in infos:
        parquet = pq.ParquetFile(out_dir / info.path)
        assert info.path.startswith("spill/spill-")
        assert parquet.metadata.num_rows == info.rows
        assert parquet.num_row_groups == len(info.shards) == len(set(info.shards))
        for group, shard in enumerate(info.shards):
            rows = parquet.read_row_group(group).to_pylist()
            assert rows, (info, group)
            largest = max(largest, len(rows))
            assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
            for row in rows:
                assert row["shard"] == shard == shard_of(row["id"], num_shards)
                doc = by_id[row["id"]]
                fields = ("text", "n_chars", "n_tokens", "source", "file", "line")
                assert {k: row[k] for k in fields} == {k: getattr(doc, k) for k in fields}
                assert row["id"] not in spilled
                spilled[row["id"]] = info.path
    assert sorted(spilled) == sorted(by_id)
    assert largest > 2  # the order within a row group is checked on real groups
    assert {r.id: r.spill for r in records} == spilled
    return len(spilled)


def test_spill_documents_writes_row_groups_by_shard_and_small_records(tmp_path):
    docs = make_docs(40)
    num_shards = 4
    with local_pipeline() as p:
        spilled = (
            p
            | beam.Create(docs)
            | SpillDocuments(str(tmp_path), "spill", num_shards, max_bytes=150)
        )
        small = spilled["records"] | "Small" >> beam.Map(lambda r: r._replace(spill=None))
        assert_that(
            small,
            equal_to(
                [
                    DedupRecord(d.id, key_hash(d.key), d.n_chars, d.file, d.line, None, d.sig)
                    for d in docs
                ]
            ),
            label="records",
        )
        checked = (
            spilled["records"]
            | beam.combiners.ToList()
            | beam.Map(
                check_spill, beam.pvalue.AsList(spilled["files"]), tmp_path, docs, num_shards
            )
        )
        assert_that(checked, equal_to([len(docs)]), label="spill files")


def test_remove_unreferenced_deletes_only_stale_spill_files(tmp_path):
    spill = tmp_path / "spill"
    other = tmp_path / "other"
    spill.mkdir()
    other.mkdir()
    names = ["spill-a.parquet", "spill-b.parquet", "spill-c.parquet", "kept.parquet", "notes.txt"]
    for name in names:
        (spill / name).write_bytes(b"x")
    (other / "spill-d.parquet").write_bytes(b"x")
    referenced = {"spill/spill-a.parquet", "spill/spill-c.parquet"}
    assert remove_unreferenced(str(tmp_path), "spill", referenced) == 1
    assert sorted(p.name for p in spill.iterdir()) == sorted(set(names) - {"spill-b.parquet"})
    assert (other / "spill-d.parquet").exists()
    assert remove_unreferenced(str(tmp_path), "spill", referenced) == 0
    assert remove_unreferenced(str(tmp_path), "spill", set()) == 2
    assert sorted(p.name for p in spill.iterdir()) == ["kept.parquet", "notes.txt"]


def test_keys_at_places_reads_each_needed_key_once(tmp_path):
    # "twin" repeats an id at another (file, line): its place names the first record only.
    twin = make_doc("doc-010", 40, "まったく別の本文です。")._replace(line=999)
    docs = make_docs(30) + [
        make_doc("empty-key", 1, "、。！？ …"),
        make_doc("wide", 2, "Ｈｅｌｌｏ、　世界！"),
        twin,
    ]
    needed = ["doc-003", "doc-010", "doc-011", "doc-029", "empty-key", "wide"]
    requests = [(i, f"to-{i}") for i in needed] + [(i, "again") for i in needed[:3]]
    requests += [("doc-010", "third")]
    by_id = {d.id: d for d in docs if d is not twin}
    assert dedup_key(by_id["empty-key"].text) == ""
    assert dedup_key(by_id["wide"].text) == "hello 世界"
    expected = []
    for i in needed:
        payloads = [p for j, p in requests if j == i]
        if i != "empty-key":
            expected.append((i, dedup_key(by_id[i].text), tuple(sorted(payloads))))
    with local_pipeline() as p:
        spilled = (
            p
            | "Docs" >> beam.Create(docs)
            | SpillDocuments(str(tmp_path), "spill", 3, max_bytes=40)
        )
        # the first record of an id is the one that survives UniqueIds
        first = spilled["records"] | beam.Filter(lambda r: r.line != 999)
        places = beam.pvalue.AsDict(
            first | "Places" >> beam.Map(lambda r: (r.id, (r.spill, r.file, r.line)))
        )
        keys = (
            p
            | "Requests" >> beam.Create(requests)
            | "AtPlaces" >> beam.Map(lambda r, at: (r[0], at[r[0]], r[1]), at=places)
            | KeysAtPlaces(str(tmp_path))
            | beam.MapTuple(lambda i, kv: (i, kv[0], tuple(sorted(kv[1]))))
        )
        assert_that(keys, equal_to(expected))


# ── train and val shards from the spill files ───────────────────────────────────────────────


def test_write_split_shards_matches_the_sharded_writer(tmp_path):
    num_shards, val_fraction, seed, row_group_size = 5, 0.3, "7", 3
    ids = [i for i in (f"doc-{n:03d}" for n in range(80)) if shard_of(i, num_shards) != 4]
    docs = [make_doc(doc_id, n) for n, doc_id in enumerate(ids)]
    removed = [ids[1], ids[4], ids[9], ids[4], "never-spilled"]
    kept = sorted((d for d in docs if d.id not in removed), key=lambda d: d.id)
    split = {d.id: assign_split(d.id, val_fraction, seed) for d in kept}
    by_split = {s: [d for d in kept if split[d.id] == s] for s in ("train", "val")}
    assert len(by_split["train"]) > 10 and len(by_split["val"]) > 5

    def infos(name):
        out = []
        for shard in range(num_shards):
            rows = [d for d in by_split[name] if shard_of(d.id, num_shards) == shard]
            out.append(
                ShardFile(
                    f"{name}/{shard_name(name, shard, num_shards)}",
                    shard,
                    len(rows),
                    name,
                    sum(d.n_tokens for d in rows),
                    sum(d.n_chars for d in rows),
                    None,
                )
            )
        return out

    new, old = tmp_path / "new", tmp_path / "old"
    with local_pipeline() as p:
        spilled = (
            p
            | "Docs" >> beam.Create(docs)
            | SpillDocuments(str(new), "_stages/spill", num_shards, max_bytes=80)
        )
        written = (spilled["files"], p | "Removed" >> beam.Create(removed)) | WriteSplitShards(
            str(new), num_shards, val_fraction, seed, row_group_size
        )
        assert_that(
            written["shards"] | beam.Map(lambda s: s._replace(sha256=None)),
            equal_to([info for name in ("train", "val") for info in infos(name)]),
            label="shards",
        )
        assert_that(
            written["kept"],
            equal_to(
                [KeptDocument(split[d.id], d.text, d.n_chars, d.n_tokens, d.file) for d in kept]
            ),
            label="kept",
        )
        for name in ("train", "val"):
            old_infos = (
                p
                | f"Old{name}" >> beam.Create(by_split[name])
                | f"Write{name}"
                >> WriteShardedParquet(
                    str(old), name, name, num_shards, DOC_SCHEMA, row_group_size=row_group_size
                )
            )
            assert_that(
                old_infos,
                equal_to([TableFile(i.path, i.shard, i.rows) for i in infos(name)]),
                label=f"old {name}",
            )

    for name in ("train", "val"):
        files = sorted(p.name for p in (new / name).iterdir())
        assert files == [shard_name(name, s, num_shards) for s in range(num_shards)]
        for shard, file in enumerate(files):
            table = pq.read_table(new / name / file)
            assert table.schema.equals(DOC_SCHEMA)
            expected = [
                {k: getattr(d, k) for k in DOC_SCHEMA.names}
                for d in by_split[name]
                if shard_of(d.id, num_shards) == shard
            ]
            assert table.to_pylist() == expected
            assert (new / name / file).read_bytes() == (old / name / file).read_bytes(), file

        assert pq.read_metadata(new / name / files[4]).num_rows == 0  # empty shard written
        assert max(pq.read_metadata(new / name / f).num_row_groups for f in files) > 1
