"""Normalize, filter and tokenize: raw records → documents ready for dedup, or filtered.

In order, each decision counted (`filter/<reason>`) and the first that removes a document
named as its reason: a web page's URL on the blocklist (`blocked_url`), then normalization,
the default filters (`text/filters.py`), the quality preset (`text/presets/`), and PII
(`text/pii.py`: masked spans are counted by kind on the `pii` output, `--pii drop` filters
the document as `contains_pii`). The dedup key is made from the final text.
"""

from __future__ import annotations

import apache_beam as beam

from beam_jobs.records import WEB_FIELDS, Document, Event, Filtered, RawRecord
from beam_jobs.runtime.progress import report_progress
from beam_jobs.text.filters import FilterConfig, filter_reason
from beam_jobs.text.normalize import NormalizeConfig, dedup_key, normalize_text
from beam_jobs.text.options import QualityConfig
from beam_jobs.text.pii import PII_REASON, apply_pii
from beam_jobs.text.presets import get_preset
from beam_jobs.tokens.tokenizers import get_tokenizer

FILTERED = "filtered"
PII = "pii"
_URL = WEB_FIELDS.names.index("url")


def load_blocklist(path: str | None):
    """The URL blocklist at `path` (any Beam filesystem), or None."""
    if not path:
        return None
    from apache_beam.io.filesystems import FileSystems

    from beam_jobs.text.urls import UrlBlocklist

    with FileSystems.open(path) as handle:
        lines = handle.read().decode("utf-8").splitlines()
    return UrlBlocklist.from_lines(lines, path)


class CleanFn(beam.DoFn):
    """`RawRecord` → `Document` (text, dedup key, counts), or `Filtered` with the reason."""

    def __init__(
        self,
        normalize: NormalizeConfig,
        filters: FilterConfig,
        tokenizer: str,
        quality: QualityConfig = QualityConfig(),
    ):
        self.normalize, self.filters, self.tokenizer_name = normalize, filters, tokenizer
        self.quality = quality

    def setup(self):
        self.tokenizer = get_tokenizer(self.tokenizer_name)
        self.preset = get_preset(self.quality.preset)
        self.blocklist = load_blocklist(self.quality.url_blocklist)
        self.kept = beam.metrics.Metrics.counter("filter", "passed")
        self.chars = beam.metrics.Metrics.distribution("filter", "chars")

    def reason(self, record: RawRecord, text: str) -> str | None:
        if (
            self.blocklist is not None
            and record.web
            and record.web[_URL]
            and (self.blocklist.match(record.web[_URL]))
        ):
            return "blocked_url"
        return filter_reason(text, self.filters) or (
            self.preset.reason(text) if self.preset else None
        )

    def process(self, record: RawRecord):
        report_progress(1, len(record.raw_text), stage="clean")
        text = normalize_text(record.raw_text, self.normalize)
        reason = self.reason(record, text)
        if not reason and self.quality.pii.mode != "off":
            text, found = apply_pii(text, self.quality.pii)
            for kind, n in sorted(found.items()):
                beam.metrics.Metrics.counter("pii", kind).inc(n)
                yield beam.pvalue.TaggedOutput(PII, Event("pii", record.file, kind, n=n))
            reason = PII_REASON if text is None else None
        if reason:
            beam.metrics.Metrics.counter("filter", reason).inc()
            yield beam.pvalue.TaggedOutput(FILTERED, Filtered(record.id, record.file, reason))
            return
        self.kept.inc()
        self.chars.update(len(text))
        yield Document(
            record.id,
            text,
            dedup_key(text),
            len(text),
            self.tokenizer.count(text),
            record.source,
            record.file,
            record.line,
            None,
            record.web,
        )


class CleanDocuments(beam.PTransform):
    """`RawRecord`s → {'docs': `Document`s, 'filtered': `Filtered` rows, 'pii': `Event`s of
    the PII spans masked or found, by kind}."""

    def __init__(
        self,
        normalize: NormalizeConfig,
        filters: FilterConfig,
        tokenizer: str = "char",
        quality: QualityConfig = QualityConfig(),
    ):
        super().__init__()
        self.fn = CleanFn(normalize, filters, tokenizer, quality)

    def expand(self, records):
        out = records | "NormalizeFilterTokenize" >> beam.ParDo(self.fn).with_outputs(
            FILTERED, PII, main="docs"
        )
        return {"docs": out.docs, "filtered": out[FILTERED], "pii": out[PII]}
