"""The sharded Parquet writer: every shard written, rows sorted, shard by a hash of the id."""

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_jobs.io.parquet import WriteShardedParquet
from beam_jobs.records import DOC_SCHEMA, Document
from beam_jobs.split.assign import shard_of


def test_sharded_writer_is_sorted_complete_and_reports_counts(tmp_path):
    rows = [Document(f"d{i:02d}", "x" * i, "x", i, i, "s", "f", i) for i in range(30)]
    with TestPipeline(runner="FnApiRunner") as p:
        infos = (
            p
            | beam.Create(rows)
            | WriteShardedParquet(str(tmp_path), "train", "train", 4, DOC_SCHEMA)
        )
        assert_that(
            infos | beam.Map(lambda i: (i.path, i.shard, i.rows)),
            equal_to(
                [
                    (
                        f"train/train-0000{s}-of-00004.parquet",
                        s,
                        sum(shard_of(r.id, 4) == s for r in rows),
                    )
                    for s in range(4)
                ]
            ),
        )
    total = 0
    for path in sorted((tmp_path / "train").glob("*.parquet")):
        table = pq.read_table(path)
        assert table.schema.equals(DOC_SCHEMA)
        ids = table.column("id").to_pylist()
        assert ids == sorted(ids)
        total += len(ids)
    assert total == 30
