"""Normalize, filter and tokenize: raw records → documents ready for dedup, or filtered."""

from __future__ import annotations

import apache_beam as beam

from beam_jobs.runtime.progress import report_progress
from beam_jobs.text.filters import FilterConfig, filter_reason
from beam_jobs.text.normalize import NormalizeConfig, dedup_key, normalize_text
from beam_jobs.tokens.tokenizers import get_tokenizer

FILTERED = "filtered"


class CleanFn(beam.DoFn):
    def __init__(self, normalize: NormalizeConfig, filters: FilterConfig, tokenizer: str):
        self.normalize, self.filters, self.tokenizer_name = normalize, filters, tokenizer

    def setup(self):
        self.tokenizer = get_tokenizer(self.tokenizer_name)
        self.kept = beam.metrics.Metrics.counter("filter", "passed")
        self.chars = beam.metrics.Metrics.distribution("filter", "chars")

    def process(self, record: dict):
        report_progress(1, len(record["raw_text"]), stage="clean")
        text = normalize_text(record["raw_text"], self.normalize)
        reason = filter_reason(text, self.filters)
        if reason:
            beam.metrics.Metrics.counter("filter", reason).inc()
            yield beam.pvalue.TaggedOutput(FILTERED, {
                "id": record["id"], "file": record["file"], "reason": reason})
            return
        self.kept.inc()
        self.chars.update(len(text))
        yield {
            "id": record["id"], "text": text, "key": dedup_key(text),
            "n_chars": len(text), "n_tokens": self.tokenizer.count(text),
            "source": record["source"], "file": record["file"], "line": record["line"],
        }


class CleanDocuments(beam.PTransform):
    """Records → {'docs', 'filtered'}: docs carry `text` (training), `key` (dedup), counts."""

    def __init__(self, normalize: NormalizeConfig, filters: FilterConfig, tokenizer: str = "char"):
        super().__init__()
        self.fn = CleanFn(normalize, filters, tokenizer)

    def expand(self, records):
        out = records | "NormalizeFilterTokenize" >> beam.ParDo(self.fn).with_outputs(
            FILTERED, main="docs")
        return {"docs": out.docs, "filtered": out[FILTERED]}
