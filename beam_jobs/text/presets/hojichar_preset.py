"""A Japanese quality preset built from HojiChar's own document filters (Apache-2.0).

The rules are the list the HojiChar community composes for Japanese web text (its README and
the llm-jp / OSCAR cleaning scripts that use it: `AcceptJapanese`, `DiscardRareKuten`,
`DocumentLengthFilter(100, 50000)`, the NG-word filters on the word lists HojiChar ships, the
BBS and advertisement filters), followed by HojiChar's newer repetition and layout filters with
their default thresholds. Left out: filters that need its extras (fugashi, emoji: word
repetition, noun share, special tokens), the fastText language ID (it downloads its model), and
the filters that rewrite text instead of judging it (normalizer, PII masking: see `pii.py`).

The filters run in order on a `hojichar.Document` and the first that sets `is_rejected` names
the reason: what `hojichar.Compose` does with `skip_rejected`, without its per-filter
statistics (two UTF-8 encodes per filter and document: Compose ran at 145 docs/s against this
loop's 234 on corpora/ja + literature; Beam counters count here). Nothing is downloaded: the
word lists are files inside the `hojichar` package.

The Japanese NG-word filters run with HojiChar's `ignore_confused=True` (a katakana word counts
only when no katakana touches it): without it, エンコード, インポート, スケジュール and クラス
match the adult and discrimination lists, and 1,701 of 3,135 Python-docs pages are rejected
as adult content (766 with it). Four filters use the drop-in fast paths of `hojichar_fast`.
"""

from __future__ import annotations

import functools

from hojichar import Document
from hojichar import document_filters as hf

from beam_jobs.text.presets import hojichar_fast as fast

# (reason, filter factory): community order, cheapest first within it.
HOJICHAR_RULES = (
    ("hojichar_not_japanese", hf.AcceptJapanese),
    ("hojichar_rare_kuten", hf.DiscardRareKuten),
    ("hojichar_length", lambda: hf.DocumentLengthFilter(min_doc_len=100, max_doc_len=50000)),
    ("hojichar_adult_ja", lambda: fast.DiscardAdultContentJa(ignore_confused=True)),
    ("hojichar_adult_en", hf.DiscardAdultContentEn),
    (
        "hojichar_discrimination_ja",
        lambda: fast.DiscardDiscriminationContentJa(ignore_confused=True),
    ),
    ("hojichar_violence_ja", lambda: hf.DiscardViolenceContentJa(ignore_confused=True)),
    ("hojichar_bbs_comments", fast.DiscardBBSComments),
    ("hojichar_ads", hf.DiscardAds),
    ("hojichar_char_repetition", fast.CharRepetitionRatioFilter),
    ("hojichar_single_char_repetition", fast.SingleCharacterRepetitionFilter),
    ("hojichar_ending_ellipsis", hf.DiscardTooManyEndingEllipsis),
    ("hojichar_short_lines", hf.DiscardTooShortLines),
)
HOJICHAR_REASONS = tuple(reason for reason, _ in HOJICHAR_RULES)


@functools.lru_cache(maxsize=1)
def _filters() -> tuple:
    # Built once per process (the NG-word tables take ~0.1 s), never pickled: a DoFn holding
    # only the preset's name stays small and portable.
    return tuple(factory() for _, factory in HOJICHAR_RULES)


def hojichar_reason(text: str) -> str | None:
    """The first HojiChar filter that rejects `text` (a name in HOJICHAR_REASONS), or None."""
    for reason, filt in zip(HOJICHAR_REASONS, _filters()):
        if filt.apply(Document(text)).is_rejected:
            return reason
    return None


def hojichar_failures(text: str) -> list[str]:
    """Every HojiChar rule `text` fails, each filter on a fresh document (for audits)."""
    return [
        reason
        for reason, filt in zip(HOJICHAR_REASONS, _filters())
        if filt.apply(Document(text)).is_rejected
    ]
