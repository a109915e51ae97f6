"""ReadDocuments on WARC/WET files (generated here): every record is a document, a skipped,
filtered or rejected row with its reason, and the per-file identity holds; hostile records
(a lying Content-Length, a gzip member cut in half, a 100 MB payload, binary garbage served
as HTML, a page that makes the extractor slow) each cost one counted record."""

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_jobs.io.files import detect_format
from beam_jobs.io.read import ReadConfig, ReadDocuments
from beam_jobs.records import WEB_FIELDS, Event
from beam_jobs.web.extract import ExtractConfig
from beam_jobs.web.langid import LangConfig
from beam_jobs.web.page import WebConfig
from tests.web_fixtures import U, record_id, write_inputs

OUTPUTS = ("docs", "skipped", "filtered", "rejected")


def test_detect_format():
    assert [detect_format(p, "auto") for p in ("a.warc.gz", "b.warc", "c.wet.gz", "d.WET")] == [
        "warc",
        "warc",
        "wet",
        "wet",
    ]


def outcome_of(record) -> str:
    """The reason a record is not a document (its detail for a skipped Event), or document."""
    if isinstance(record, Event):
        return record.detail
    return getattr(record, "reason", "document")


def web_field(record, name: str):
    return record.web[WEB_FIELDS.names.index(name)]


def test_every_record_accounted_for(tmp_path):
    pattern = write_inputs(tmp_path)
    config = WebConfig(
        extract=ExtractConfig(timeout_s=0.5),
        lang=LangConfig(langs=("ja",)),
        max_record_bytes=16 << 20,
    )
    pipeline = TestPipeline(runner="FnApiRunner")
    with pipeline as p:
        read = p | ReadDocuments(ReadConfig((pattern,), block_bytes=2000), web=config)
        rows = [
            read[name]
            | f"Where{name}" >> beam.Map(lambda r, name=name: (name, r.file, outcome_of(r)))
            for name in OUTPUTS
        ]
        outcome = rows | beam.Flatten()
        per_file = outcome | beam.Map(lambda o: o[1]) | beam.combiners.Count.PerElement()
        assert_that(
            per_file,
            equal_to([("crawl-00000.warc.gz", 14), ("plain.warc", 2), ("text.wet.gz", 2)]),
            label="IdentityPerFile",
        )
        assert_that(
            read["files"] | beam.Map(lambda f: (f.path, f.records)),
            equal_to([("crawl-00000.warc.gz", 14), ("plain.warc", 2), ("text.wet.gz", 2)]),
            label="FilesRead",
        )
        crawl = outcome | beam.Filter(lambda o: o[1] == "crawl-00000.warc.gz")
        assert_that(
            crawl | beam.Map(lambda o: (o[0], o[2])),
            equal_to(
                [
                    ("skipped", "skip_warcinfo"),
                    ("skipped", "skip_request"),
                    ("docs", "document"),
                    ("skipped", "skip_metadata"),
                    ("filtered", "lang_mismatch"),
                    ("filtered", "lang_mismatch"),
                    ("filtered", "http_404"),
                    ("filtered", "non_html"),
                    ("filtered", "binary_payload"),
                    ("rejected", "content_length_mismatch"),
                    ("rejected", "gzip_corrupt"),
                    ("rejected", "record_too_large"),
                    ("rejected", "extract_timeout"),
                    ("skipped", "skip_revisit"),
                ]
            ),
            label="CrawlOutcomes",
        )
        assert_that(
            read["docs"]
            | beam.Map(lambda d: (d.id, web_field(d, "charset"), web_field(d, "lang"))),
            equal_to(
                [
                    (record_id(U + "ja"), "cp932", "ja"),
                    (record_id(U + "p"), "utf-8", "ja"),
                    (record_id("wet:" + U + "w"), "utf-8", "ja"),
                ]
            ),
            label="Docs",
        )
    result = pipeline.result
    timeouts = result.metrics().query(MetricsFilter().with_name("rejected.extract_timeout"))
    assert sum(c.committed for c in timeouts["counters"]) == 1
    langs = result.metrics().query(MetricsFilter().with_name("lang.zh"))
    assert sum(c.committed for c in langs["counters"]) == 1
