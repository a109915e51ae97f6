"""Exact dedup on the dedup key's hash: the smallest id survives."""

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_jobs.dedup.exact import ExactDedup, RedirectToKept, key_hash
from beam_jobs.records import DedupRecord, Duplicate
from beam_jobs.text.normalize import dedup_key


def record(doc_id: str, text: str) -> DedupRecord:
    return DedupRecord(doc_id, key_hash(dedup_key(text)), len(text), "f", 1, "spill-x")


def test_exact_dedup_keeps_smallest_id():
    texts = {"c": "同じ 文書。", "a": "同じ\n文書", "b": "ＯＴＨＥＲ", "d": "other"}
    with TestPipeline(runner="FnApiRunner") as p:
        out = p | beam.Create([record(i, t) for i, t in texts.items()]) | ExactDedup()
        assert_that(
            out["kept"] | "Kept" >> beam.Map(lambda r: r.id), equal_to(["a", "b"]), label="kept"
        )
        assert_that(
            out["duplicates"],
            equal_to(
                [Duplicate("c", "a", "exact", 1.0, "f"), Duplicate("d", "b", "exact", 1.0, "f")]
            ),
            label="duplicates",
        )


def test_exact_copies_of_a_near_duplicate_point_at_the_final_survivor():
    exact = [Duplicate("c", "b", "exact", 1.0, "f"), Duplicate("d", "a", "exact", 1.0, "g")]
    near = [Duplicate("b", "a", "near", 0.9, "f")]
    with TestPipeline(runner="FnApiRunner") as p:
        redirected = (
            p | "Exact" >> beam.Create(exact) | RedirectToKept(p | "Near" >> beam.Create(near))
        )
        assert_that(
            redirected,
            equal_to(
                [Duplicate("c", "a", "exact", 0.9, "f"), Duplicate("d", "a", "exact", 1.0, "g")]
            ),
        )
