"""The Swallow corpus v1 quality rules (Okazaki et al. 2024, "Building a Large Japanese Web
Corpus for Large Language Models", arXiv:2404.17733), one named reason per rule.

The thresholds and the definitions below follow the authors' released quality-annotation code
(`swallow-llm/swallow-corpus`, the `apply_v1` rules), which is more precise than the paper:

- characters: `len(text)`, every code point (spaces and line breaks included). "At least 400
  letters" is two rules there: 400 characters and 400 Japanese letters.
- Japanese letters: hiragana U+3041-3096, katakana U+30A1-30FA (so not the prolonged sound mark
  ー), kanji U+3400-9FFF, U+F900-FAFF, U+20000-2FFFF and 々〇〻, and the Japanese punctuation
  。、 with the full-width ．，！？. The hiragana and katakana shares are taken among Japanese
  letters; the Japanese share among all characters. (The reference meant to count kanji beyond
  the BMP through surrogate pairs, which never match a Python 3 str; we count them.)
- sentences: each line is cut after every run of terminators 。．！？!?, the rest of a line is
  its last sentence. On NFKC text ． has become "."; so "." also ends a sentence when it is not
  part of a run of dots and not followed by an ASCII letter or digit (3.11, example.com, ...
  do not). A sentence keeps its leading spaces, as in the reference.
- ellipsis sentences: those ending (spaces stripped) with …, ‥, ・ or "..", NFKC's form of ….
- paragraphs: lines with a non-space character. The reference also counts blank lines, so that
  every blank line after the first is a "duplicate paragraph": our normalized text keeps one
  blank line between paragraphs, and that would reject most well-formed documents.
- duplicate paragraphs (sentences): items that repeat an earlier item, over all items (<= 0.30),
  and the characters of those repeats over all characters of the items (<= 0.20).
- top n-gram share (n = 2, 3, 4): occurrences of the most frequent character n-gram over all
  n-gram positions of the text (<= 0.20, 0.18, 0.16).
- duplicate n-gram share (n = 5..10): distinct n-grams that occur more than once over all
  distinct n-grams (<= 0.15 ... 0.10). Note: this is the reference's definition, not Gopher's
  (characters covered by repeated n-grams over all characters, which `filters.py` uses).

The rules are checked cheapest first (the reference checks n-grams first); a document kept by
one order is kept by the other, only the first reason named can differ. `swallow_failures`
lists every rule a document fails.

Speed: script classes are one table lookup per code point; n-grams are rolling uint64 hashes
(`charngrams`), counted by one sort per size.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np

from beam_jobs.text.charngrams import occurrence_counts, rolling_hashes
from beam_jobs.text.codepoints import code_points

_OTHER, _HIRAGANA, _KATAKANA, _KANJI, _KUTEN, _TOTEN = range(6)

# A terminator run ends a sentence; "." only where it cannot be a decimal point, a domain or
# part of an ellipsis.
_TERMINATOR = r"(?:[。．！？!?]|(?<!\.)\.(?![.0-9A-Za-z]))"
_SENTENCE_RE = re.compile(rf"[^\n]*?{_TERMINATOR}+|[^\n]+")
_ELLIPSIS_ENDS = ("…", "‥", "・", "..")


@functools.lru_cache(maxsize=1)
def japanese_table() -> np.ndarray:
    """uint8 Swallow class of every code point (built from ranges in a few milliseconds).

    Not `filters.script_table`: the reference's classes differ (ー is no katakana there, 〇 is a
    kanji, and 。、 count as Japanese letters)."""
    table = np.zeros(0x110000, dtype=np.uint8)
    table[0x3041:0x3097] = _HIRAGANA
    table[0x30A1:0x30FB] = _KATAKANA
    for lo, hi in ((0x3400, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FFFF)):
        table[lo : hi + 1] = _KANJI
    table[[0x3005, 0x3007, 0x303B]] = _KANJI
    table[[ord(c) for c in "。．！？"]] = _KUTEN
    table[[ord(c) for c in "、，"]] = _TOTEN
    return table


@dataclass(frozen=True)
class SwallowConfig:
    """Thresholds of the Swallow corpus v1 rules (the defaults are the paper's)."""

    min_chars: int = 400
    min_japanese_letters: int = 400
    min_japanese_fraction: float = 0.5
    min_hiragana_fraction: float = 0.2
    max_katakana_fraction: float = 0.5
    min_mean_sentence: float = 20
    max_mean_sentence: float = 90
    max_sentence: int = 200
    max_ellipsis_fraction: float = 0.2
    max_duplicate_paragraphs: float = 0.30
    max_duplicate_paragraph_chars: float = 0.20
    max_duplicate_sentences: float = 0.30
    max_duplicate_sentence_chars: float = 0.20
    max_top_ngram: tuple[tuple[int, float], ...] = ((2, 0.20), (3, 0.18), (4, 0.16))
    max_duplicate_ngram: tuple[tuple[int, float], ...] = (
        (5, 0.15),
        (6, 0.14),
        (7, 0.13),
        (8, 0.12),
        (9, 0.11),
        (10, 0.10),
    )

    def to_dict(self) -> dict:
        return asdict(self)


_C = SwallowConfig()
SWALLOW_REASONS = (
    "swallow_too_short",
    "swallow_few_japanese_letters",
    "swallow_not_japanese",
    "swallow_few_hiragana",
    "swallow_many_katakana",
    "swallow_short_sentences",
    "swallow_long_sentences",
    "swallow_longest_sentence",
    "swallow_ellipsis",
    "swallow_duplicate_paragraphs",
    "swallow_duplicate_paragraph_chars",
    "swallow_duplicate_sentences",
    "swallow_duplicate_sentence_chars",
    *(f"swallow_top_{n}gram" for n, _ in _C.max_top_ngram),
    *(f"swallow_duplicate_{n}gram" for n, _ in _C.max_duplicate_ngram),
)


def sentences(text: str) -> list[str]:
    """The sentences of `text`, line by line (see the module docstring)."""
    return _SENTENCE_RE.findall(text)


def duplicate_shares(items: list[str]) -> tuple[float, float]:
    """(items repeating an earlier one / items, their characters / all characters)."""
    if not items:
        return 0.0, 0.0
    counts = Counter(items)
    dup_items = len(items) - len(counts)
    dup_chars = sum(len(s) * (f - 1) for s, f in counts.items() if f > 1)
    total = sum(len(s) for s in items)
    return dup_items / len(items), (dup_chars / total if total else 0.0)


def ngram_shares(codes: np.ndarray, max_n: int = 10) -> Iterator[tuple[int, float, float]]:
    """(n, top n-gram share, duplicate n-gram share) for n = 2..max_n, lazily.

    Top share: count of the most frequent n-gram / n-gram positions. Duplicate share: distinct
    n-grams seen more than once / distinct n-grams."""
    for n, hashes in rolling_hashes(codes, max_n):
        if n >= 2:
            runs = occurrence_counts(hashes)
            yield n, float(runs.max()) / len(hashes), float(np.count_nonzero(runs > 1)) / len(runs)


def _script_failures(text: str, cfg: SwallowConfig) -> Iterator[str]:
    counts = np.bincount(japanese_table()[code_points(text)], minlength=6)
    japanese = int(counts[1:].sum())
    if japanese < cfg.min_japanese_letters:
        yield "swallow_few_japanese_letters"
    if japanese < cfg.min_japanese_fraction * len(text):
        yield "swallow_not_japanese"
    if counts[_HIRAGANA] < cfg.min_hiragana_fraction * japanese or not japanese:
        yield "swallow_few_hiragana"
    if counts[_KATAKANA] > cfg.max_katakana_fraction * japanese:
        yield "swallow_many_katakana"


def _sentence_failures(sents: list[str], cfg: SwallowConfig) -> Iterator[str]:
    lengths = [len(s) for s in sents] or [0]
    mean = sum(lengths) / len(lengths)
    if mean < cfg.min_mean_sentence:
        yield "swallow_short_sentences"
    if mean > cfg.max_mean_sentence:
        yield "swallow_long_sentences"
    if max(lengths) > cfg.max_sentence:
        yield "swallow_longest_sentence"
    ellipsis = sum(1 for s in sents if s.rstrip().endswith(_ELLIPSIS_ENDS))
    if ellipsis > cfg.max_ellipsis_fraction * max(len(sents), 1):
        yield "swallow_ellipsis"


def _duplicate_failures(text: str, sents: list[str], cfg: SwallowConfig) -> Iterator[str]:
    paragraphs = [line for line in text.split("\n") if line.strip()]
    items, chars = duplicate_shares(paragraphs)
    if items > cfg.max_duplicate_paragraphs:
        yield "swallow_duplicate_paragraphs"
    if chars > cfg.max_duplicate_paragraph_chars:
        yield "swallow_duplicate_paragraph_chars"
    items, chars = duplicate_shares(sents)
    if items > cfg.max_duplicate_sentences:
        yield "swallow_duplicate_sentences"
    if chars > cfg.max_duplicate_sentence_chars:
        yield "swallow_duplicate_sentence_chars"


def _ngram_failures(text: str, cfg: SwallowConfig) -> Iterator[str]:
    top, dup = dict(cfg.max_top_ngram), dict(cfg.max_duplicate_ngram)
    for n, top_share, dup_share in ngram_shares(code_points(text), max(top | dup, default=0)):
        if n in top and top_share > top[n]:
            yield f"swallow_top_{n}gram"
        if n in dup and dup_share > dup[n]:
            yield f"swallow_duplicate_{n}gram"


def _failures(text: str, cfg: SwallowConfig) -> Iterator[str]:
    """Every rule `text` fails, cheapest checks first, computed only as far as consumed."""
    if len(text) < cfg.min_chars:
        yield "swallow_too_short"
    yield from _script_failures(text, cfg)
    sents = sentences(text)
    yield from _sentence_failures(sents, cfg)
    yield from _duplicate_failures(text, sents, cfg)
    yield from _ngram_failures(text, cfg)


def swallow_reason(text: str, config: SwallowConfig = _C) -> str | None:
    """The first Swallow rule that rejects `text` (a name in SWALLOW_REASONS), or None."""
    return next(_failures(text, config), None)


def swallow_failures(text: str, config: SwallowConfig = _C) -> list[str]:
    """Every Swallow rule that `text` fails, in check order (for audits and overlap studies)."""
    return list(_failures(text, config))
