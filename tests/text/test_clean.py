"""The Clean step: `RawRecord`s → normalized, filtered `Document`s with counts."""

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from conftest import PROSE

from beam_jobs.records import Filtered, RawRecord
from beam_jobs.text.clean import CleanDocuments
from beam_jobs.text.filters import FilterConfig
from beam_jobs.text.normalize import NormalizeConfig


def test_clean_normalizes_filters_and_counts_tokens():
    records = [
        RawRecord("a", "ｶﾞｲﾄﾞ\u3000" + PROSE, "s", "f", 1),
        RawRecord("b", "短い", "s", "f", 2),
    ]
    with TestPipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(records) | CleanDocuments(NormalizeConfig(), FilterConfig())
        docs = out["docs"] | "Docs" >> beam.Map(
            lambda d: (d.id, d.text[:4], d.key[:4], d.n_tokens == d.n_chars, d.line, d.sig)
        )
        assert_that(docs, equal_to([("a", "ガイド ", "ガイド ", True, 1, None)]), label="docs")
        assert_that(out["filtered"], equal_to([Filtered("b", "f", "too_short")]), label="filtered")
