"""Normalize, filter and tokenize: raw records → documents ready for dedup, or filtered."""

from __future__ import annotations

import apache_beam as beam

from beam_jobs.records import Document, Filtered, RawRecord
from beam_jobs.runtime.progress import report_progress
from beam_jobs.text.filters import FilterConfig, filter_reason
from beam_jobs.text.normalize import NormalizeConfig, dedup_key, normalize_text
from beam_jobs.tokens.tokenizers import get_tokenizer

FILTERED = "filtered"


class CleanFn(beam.DoFn):
    """`RawRecord` → `Document` (text, dedup key, counts), or `Filtered` with the reason."""

    def __init__(self, normalize: NormalizeConfig, filters: FilterConfig, tokenizer: str):
        self.normalize, self.filters, self.tokenizer_name = normalize, filters, tokenizer

    def setup(self):
        self.tokenizer = get_tokenizer(self.tokenizer_name)
        self.kept = beam.metrics.Metrics.counter("filter", "passed")
        self.chars = beam.metrics.Metrics.distribution("filter", "chars")

    def process(self, record: RawRecord):
        report_progress(1, len(record.raw_text), stage="clean")
        text = normalize_text(record.raw_text, self.normalize)
        reason = filter_reason(text, self.filters)
        if reason:
            beam.metrics.Metrics.counter("filter", reason).inc()
            yield beam.pvalue.TaggedOutput(FILTERED, Filtered(record.id, record.file, reason))
            return
        self.kept.inc()
        self.chars.update(len(text))
        yield Document(record.id, text, dedup_key(text), len(text), self.tokenizer.count(text),
                       record.source, record.file, record.line)


class CleanDocuments(beam.PTransform):
    """`RawRecord`s → {'docs': `Document`s, 'filtered': `Filtered` rows}."""

    def __init__(self, normalize: NormalizeConfig, filters: FilterConfig, tokenizer: str = "char"):
        super().__init__()
        self.fn = CleanFn(normalize, filters, tokenizer)

    def expand(self, records):
        out = records | "NormalizeFilterTokenize" >> beam.ParDo(self.fn).with_outputs(
            FILTERED, main="docs")
        return {"docs": out.docs, "filtered": out[FILTERED]}
