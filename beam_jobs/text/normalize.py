"""Text normalization: the training text and the dedup-matching key, kept apart.

NFKC is safe for Japanese: it composes (ｶﾞ → ガ), widens half-width kana and narrows
full-width Latin (ＡＢＣ → ABC) but never strips voicing marks, so が/ぱ stay distinct from
か/は. The seed rules of the design (lower-casing, a punctuation set to space, whitespace
folding) are options for the training text and always on for the dedup key.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass

SEED_PUNCTUATION = "。､，,.!?！？"
WHITESPACE_MODES = ("all", "lines", "none")

# The seed set is given in its raw form; NFKC maps ､ to 、 and the full-width marks to ASCII,
# so we match the NFKC forms (the text is normalized before the set applies).
_PUNCT_RE = re.compile(
    "[" + re.escape("".join(sorted(set(unicodedata.normalize("NFKC", SEED_PUNCTUATION))))) + "]"
)
# Line breaks that are not "\n": CR, CRLF, NEL, U+2028/U+2029, vertical tab, form feed.
_LINE_BREAK_RE = re.compile("\r\n|[\r\x0b\x0c\x85\u2028\u2029]")
# Control and format characters that carry nothing for a language model (kept: \n and \t).
_CONTROL_RE = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u200b\ufeff]")
_BLANK_LINES_RE = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class NormalizeConfig:
    """How the training text is normalized (the dedup key always uses the seed rules)."""

    form: str = "NFKC"
    lowercase: bool = False
    punct_to_space: bool = False
    whitespace: str = "lines"

    def __post_init__(self):
        if self.form not in ("NFKC", "NFC", "none"):
            raise ValueError(f"unknown normalization form {self.form!r}: use NFKC, NFC or none")
        if self.whitespace not in WHITESPACE_MODES:
            raise ValueError(f"unknown whitespace mode {self.whitespace!r}: use {WHITESPACE_MODES}")

    def to_dict(self) -> dict:
        return {**asdict(self), "punctuation": SEED_PUNCTUATION if self.punct_to_space else ""}


def fold_whitespace(text: str, mode: str) -> str:
    """'all': every run of whitespace to one space. 'lines': keep line structure, fold spaces
    inside lines, strip line ends, keep at most one blank line. 'none': unchanged."""
    # str.split() splits on runs of the same whitespace as the regex \s and drops the ends:
    # one C pass, 2-3x faster than a regex substitution then a strip.
    if mode == "all":
        return " ".join(text.split())
    if mode == "lines":
        text = "\n".join([" ".join(line.split()) for line in text.split("\n")])
        return _BLANK_LINES_RE.sub("\n\n", text).strip()
    return text


def normalize_text(text: str, config: NormalizeConfig = NormalizeConfig()) -> str:
    """The training text: Unicode form, unified line breaks, no control characters, then the
    configured seed rules."""
    if config.form != "none":
        text = unicodedata.normalize(config.form, text)
    text = _LINE_BREAK_RE.sub("\n", text)
    text = _CONTROL_RE.sub("", text)
    if config.lowercase:
        text = text.lower()
    if config.punct_to_space:
        text = _PUNCT_RE.sub(" ", text)
    return fold_whitespace(text, config.whitespace)


def dedup_key(text: str) -> str:
    """The key that exact and near dedup match on: NFKC, lower-cased, seed punctuation to
    space, all whitespace folded. Insensitive to width, case, spacing and line wrapping."""
    text = unicodedata.normalize("NFKC", text)
    text = _CONTROL_RE.sub("", text).lower()
    return fold_whitespace(_PUNCT_RE.sub(" ", text), "all")
