"""Statistics from events: counts by reason, per file and per split; the accounting identity."""

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_jobs.outputs.stats import CountEvents, finalize
from beam_jobs.records import Event


def test_stats_identity():
    events = [
        Event("read", "f", n=3),
        Event("read", "g", n=2),
        Event("rejected", "f", "bad_json"),
        Event("filtered", "f", "too_short"),
        Event("duplicate", "g", "exact"),
        Event("kept", "f", "train", chars=100, tokens=100),
        Event("kept", "g", "val", chars=3, tokens=3),
    ]
    with TestPipeline(runner="FnApiRunner") as p:
        stats = p | beam.Create(events) | beam.CombineGlobally(CountEvents()) | beam.Map(finalize)
        assert_that(
            stats
            | beam.Map(
                lambda s: (
                    s["read"],
                    s["kept"],
                    s["filtered"],
                    s["duplicates"],
                    s["rejected"],
                    s["identity_holds"],
                    s["splits"]["train"]["length_histogram"],
                    s["files"]["g"],
                    s["filtered_by_reason"],
                    s["splits"]["val"]["tokens"],
                )
            ),
            equal_to(
                [
                    (
                        5,
                        2,
                        1,
                        1,
                        1,
                        True,
                        {"64": 1},
                        {
                            "read": 2,
                            "kept": 1,
                            "filtered": 0,
                            "duplicates": 1,
                            "rejected": 0,
                            "skipped": 0,
                        },
                        {"too_short": 1},
                        3,
                    )
                ]
            ),
        )


def test_identity_fails_when_a_record_is_unaccounted():
    stats = finalize(
        CountEvents().add_input(CountEvents().create_accumulator(), Event("read", "f", n=2))
    )
    assert stats["read"] == 2 and stats["identity_holds"] is False


def test_skipped_records_count_in_the_identity_and_tallies_do_not():
    counter = CountEvents()
    acc = counter.create_accumulator()
    for event in (
        Event("read", "w.warc", n=3),
        Event("skipped", "w.warc", "skip_request"),
        Event("kept", "w.warc", "train", chars=10, tokens=10),
        Event("filtered", "w.warc", "http_404"),
        Event("pii", "w.warc", "email", n=4),
    ):
        acc = counter.add_input(acc, event)
    stats = finalize(acc)
    assert stats["identity_holds"] and stats["skipped_by_reason"] == {"skip_request": 1}
    assert stats["files"]["w.warc"]["skipped"] == 1 and stats["pii_by_kind"] == {"email": 4}
