r"""Drop-in fast paths for the HojiChar filters that dominate the preset's time, and a guard.

Each is a subclass of HojiChar's own class (same constructor, parameters, word list and
decision; tests compare them with the originals) that replaces only the per-document scan:

- `SingleCharacterRepetitionFilter`: a Python `itertools.groupby` over every character, here
  one C regex search for a character repeated `threshold` times.
- `CharRepetitionRatioFilter`: a Python dict of every 5-gram, here rolling uint64 hashes and
  one sort (`charngrams`).
- the Japanese NG-word filters: a regex alternation of up to 1,471 words, tried at every
  position, here one hash lookup per word length and position (numpy `searchsorted`), with
  each hit confirmed by string comparison and, for `ignore_confused`, by HojiChar's katakana
  boundary rule (a katakana word counts only with no katakana [ァ-ヴー] beside it).

On the Aozora slice they took 8.0, 3.9 and 4.9 s of the preset's 18 s. The violence list (76
short words) is left to HojiChar's regex, which is faster there.

And one guard: `DiscardBBSComments` counts matches of a regex with a `\d+話` branch, which is
tried from every digit of a run of digits: quadratic (40,000 digits took 17 s, 200,000 took
490 s). Ours tries that branch only where a run starts. The counts are the same except where a
date match ends inside a run of digits that 話 then follows, which can count one fewer.
"""

from __future__ import annotations

import re
from os import PathLike
from typing import Any

import numpy as np
from hojichar import Document
from hojichar import document_filters as hf

from beam_jobs.text.charngrams import ngram_hashes, occurrence_counts, rolling_hashes
from beam_jobs.text.codepoints import code_points

_KATAKANA_WORD = re.compile(r"[ァ-ヴー]+")
# Words longer than this (about 1% of each list) are found by str's own substring search:
# hashing every position up to the longest word (39 characters) would cost 39 passes.
_MAX_HASHED = 9


class KeywordMatcher:
    """Does a text contain any of `words` (exact code points)? Katakana-only words may be held
    to HojiChar's `ignore_confused` boundary rule."""

    def __init__(self, words: list[str], katakana_bounded: bool = False):
        self.always = "" in words  # an empty word matches everywhere, as in the regex
        self.words = {w for w in words if w}
        self.bounded = {w for w in self.words if katakana_bounded and _KATAKANA_WORD.fullmatch(w)}
        self.long = sorted(w for w in self.words if len(w) > _MAX_HASHED)
        by_len: dict[int, dict[int, bool]] = {}
        for w in self.words - set(self.long):
            key = int(ngram_hashes(code_points(w), len(w))[0])
            by_len.setdefault(len(w), {})[key] = w in self.bounded
        # Per length: sorted hashes and whether each is a boundary-checked katakana word.
        self.tables = {
            n: (
                np.array(sorted(d), dtype=np.uint64),
                np.array([d[k] for k in sorted(d)], dtype=bool),
            )
            for n, d in by_len.items()
        }
        self.max_len = max(self.tables, default=0)

    def search(self, text: str) -> bool:
        if self.always:
            return True
        codes = code_points(text)
        katakana = ((codes >= 0x30A1) & (codes <= 0x30F4)) | (codes == 0x30FC)
        for word in self.long:
            start = text.find(word)
            while start >= 0:
                if self._confirmed(text, katakana, start, len(word)):
                    return True
                start = text.find(word, start + 1)
        for n, h in rolling_hashes(codes, self.max_len):
            if n not in self.tables:
                continue
            table, bounded = self.tables[n]
            idx = np.minimum(np.searchsorted(table, h), len(table) - 1)
            hit = table[idx] == h
            if not hit.any():
                continue
            # A bounded word needs non-katakana (or the text's edge) on both sides.
            beside = np.zeros(len(h), dtype=bool)
            beside[1:] |= katakana[: len(h) - 1]
            beside |= np.append(katakana[n:], False)[: len(h)]
            hit &= ~(bounded[idx] & beside)
            for p in np.flatnonzero(hit).tolist():
                if text[p : p + n] in self.words:  # else a hash collision
                    return True
        return False

    def _confirmed(self, text: str, katakana: np.ndarray, p: int, n: int) -> bool:
        if text[p : p + n] not in self.bounded:
            return True
        before = p > 0 and katakana[p - 1]
        after = p + n < len(text) and katakana[p + n]
        return not (before or after)


def _read_words(dict_path: str | PathLike[str]) -> list[str]:
    with open(dict_path, encoding="utf-8") as fp:  # HojiChar's own reading of its lists
        return [w.strip() for w in fp.read().split("\n") if len(w) != 0]


def _fast_ng_words(base: type) -> type:
    """A subclass of one of HojiChar's Japanese NG-word filters that matches by hashing."""

    class Fast(base):
        def __init__(self, *args: Any, ignore_confused: bool = False, **kwargs: Any) -> None:
            super().__init__(*args, ignore_confused=ignore_confused, **kwargs)
            path = args[0] if args else kwargs.get("dict_path", _default_path(base))
            self._matcher = KeywordMatcher(_read_words(path), katakana_bounded=ignore_confused)

        def apply(self, doc: Document) -> Document:
            if self._matcher.search(doc.text):
                doc.is_rejected = True
            return doc

    Fast.__name__ = Fast.__qualname__ = base.__name__
    return Fast


def _default_path(cls: type) -> str:
    return cls.__init__.__defaults__[0]


DiscardAdultContentJa = _fast_ng_words(hf.DiscardAdultContentJa)
DiscardDiscriminationContentJa = _fast_ng_words(hf.DiscardDiscriminationContentJa)


class SingleCharacterRepetitionFilter(hf.SingleCharacterRepetitionFilter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._run = re.compile(r"(.)\1{" + str(max(self.threshold - 1, 0)) + "}", re.DOTALL)

    def apply(self, doc: Document) -> Document:
        if self._run.search(doc.text):
            doc.is_rejected = True
        return doc


def char_repetition_ratio(text: str, n: int) -> float:
    """HojiChar's character-repetition ratio: the share of n-gram occurrences taken by the
    sqrt(distinct)-most frequent n-grams, counting only n-grams seen more than once."""
    freqs = occurrence_counts(ngram_hashes(code_points(text), n))
    if not len(freqs):
        return 0.0
    top = min(int(np.sqrt(len(freqs))), len(freqs) - int(np.count_nonzero(freqs == 1)))
    return float(np.sort(freqs)[::-1][:top].sum()) / float(freqs.sum())


class CharRepetitionRatioFilter(hf.CharRepetitionRatioFilter):
    def apply(self, doc: Document) -> Document:
        if char_repetition_ratio(doc.text, self.ngram_size) >= self.threshold:
            doc.is_rejected = True
        return doc


class DiscardBBSComments(hf.DiscardBBSComments):
    _QUADRATIC = r"|\d+話|"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        pattern = self.keyword_pat.pattern
        if self._QUADRATIC in pattern:  # else HojiChar changed it: keep theirs
            self.keyword_pat = re.compile(pattern.replace(self._QUADRATIC, r"|(?<!\d)\d+話|"))
