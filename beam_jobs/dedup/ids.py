"""One document per id: when several input records carry the same id (two files both
numbering from 1, say), the first by (file, line) is the document and the others become
dead letters (`duplicate_id`), so that dedup, the duplicate table and the shards can name
every document by its id alone.

The same rule, `first_per_id`, is applied where the shards are written: every row of an id
lands in the same shard, so the writer finds the same first row without any list of rejects.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from beam_jobs.records import Rejected

REJECTED = "rejected"


def _first_by_location(item):
    doc_id, records = item
    records = sorted(records, key=lambda r: (r.file, r.line))
    yield records[0]
    first = records[0]
    for r in records[1:]:
        beam.metrics.Metrics.counter("read", "duplicate_ids").inc()
        yield beam.pvalue.TaggedOutput(
            REJECTED,
            Rejected(
                r.file,
                r.line,
                doc_id,
                "duplicate_id",
                f"id already used at {first.file}:{first.line}",
                "",
            ),
        )


class UniqueIds(beam.PTransform):
    """`DedupRecord`s → {'records': the first record of each id, 'rejected': `Rejected` rows
    for the others}."""

    def expand(self, records):
        out = (
            records
            | "ById" >> beam.Map(lambda r: (r.id, r))
            | "GroupById" >> beam.GroupByKey()
            | "FirstById" >> beam.FlatMap(_first_by_location).with_outputs(REJECTED, main="records")
        )
        return {"records": out.records, "rejected": out[REJECTED]}


def first_per_id(table: pa.Table) -> pa.Table:
    """Rows sorted by id, keeping the first row of each id by (file, line)."""
    table = table.take(
        pc.sort_indices(table, [("id", "ascending"), ("file", "ascending"), ("line", "ascending")])
    )
    if table.num_rows < 2:
        return table
    ids = table["id"].combine_chunks()
    repeat = pc.equal(ids.slice(1), ids.slice(0, len(ids) - 1)).to_numpy(zero_copy_only=False)
    return table.filter(pa.array(np.concatenate(([True], ~repeat))))
