"""Quality filters: pure functions over normalized text, each with a name that becomes the
reason a document was filtered (a counter and a `stats.json` entry).

Script shares are computed with one table lookup per code point (numpy), not a Python loop.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np

from beam_jobs.text.codepoints import code_points

# Script classes of code points; 0 is "not a letter".
NOT_LETTER, HIRAGANA, KATAKANA, HAN, LATIN, HANGUL, CYRILLIC, OTHER = range(8)
SCRIPTS = {
    "hiragana": HIRAGANA,
    "katakana": KATAKANA,
    "han": HAN,
    "latin": LATIN,
    "hangul": HANGUL,
    "cyrillic": CYRILLIC,
    "other": OTHER,
}
SCRIPT_GROUPS = {"ja": ("hiragana", "katakana", "han"), "any": tuple(SCRIPTS)}
_RANGES = (
    (HIRAGANA, 0x3040, 0x309F),
    (KATAKANA, 0x30A0, 0x30FF),
    (KATAKANA, 0x31F0, 0x31FF),
    (KATAKANA, 0xFF66, 0xFF9F),
    (HAN, 0x3400, 0x4DBF),
    (HAN, 0x4E00, 0x9FFF),
    (HAN, 0xF900, 0xFAFF),
    (HAN, 0x20000, 0x3134F),
    (LATIN, 0x41, 0x5A),
    (LATIN, 0x61, 0x7A),
    (LATIN, 0xC0, 0x24F),
    (LATIN, 0x1E00, 0x1EFF),
    (HANGUL, 0xAC00, 0xD7AF),
    (HANGUL, 0x1100, 0x11FF),
    (CYRILLIC, 0x400, 0x52F),
)


@functools.lru_cache(maxsize=1)
def script_table() -> np.ndarray:
    """uint8 class of every code point (built once per process, about 0.5 s, 1.1 MB)."""
    table = np.zeros(0x110000, dtype=np.uint8)
    alpha = [i for i in range(0x110000) if chr(i).isalpha()]
    table[alpha] = OTHER
    for cls, lo, hi in _RANGES:
        span = np.arange(lo, hi + 1)
        # Prolonged sound marks, iteration marks and the like are letters of their script
        # even where str.isalpha says otherwise (ー, 々 are alpha; ゛ is not).
        table[span] = np.where(table[span] != NOT_LETTER, cls, table[span])
    table[[0x30FC, 0x3005, 0x309D, 0x309E, 0x30FD, 0x30FE]] = [
        KATAKANA,
        HAN,
        HIRAGANA,
        HIRAGANA,
        KATAKANA,
        KATAKANA,
    ]
    return table


def resolve_scripts(names: str | tuple[str, ...]) -> tuple[str, ...]:
    """'ja,latin' → ('hiragana', 'katakana', 'han', 'latin'); raises on unknown names."""
    if isinstance(names, str):
        names = tuple(n.strip() for n in names.split(",") if n.strip())
    out: list[str] = []
    for name in names:
        group = SCRIPT_GROUPS.get(name, (name,))
        for script in group:
            if script not in SCRIPTS:
                raise ValueError(
                    f"unknown script {script!r}; known: {sorted(SCRIPTS) + sorted(SCRIPT_GROUPS)}"
                )
            if script not in out:
                out.append(script)
    return tuple(out)


def script_counts(codes: np.ndarray) -> np.ndarray:
    """Count of code points per script class (index = class)."""
    return np.bincount(script_table()[codes], minlength=len(SCRIPTS) + 1)


def duplicate_line_fraction(text: str) -> float:
    """Share of characters in non-empty lines that repeat an earlier line (Gopher-style)."""
    seen: set[str] = set()
    dup = total = 0
    for line in text.split("\n"):
        if not line:
            continue
        total += len(line)
        if line in seen:
            dup += len(line)
        else:
            seen.add(line)
    return dup / total if total else 0.0


def duplicate_ngram_fraction(codes: np.ndarray, n: int) -> float:
    """Share of character positions whose n-gram occurs more than once in the document.

    Boilerplate, tables of repeated tokens and generated junk score high; prose stays low.
    The n-grams are hashed with a polynomial over uint64 (wrap-around is fine: a collision
    can only make two n-grams look equal, a negligible bias at 64 bits).
    """
    if len(codes) < n + 1:
        return 0.0
    x = codes.astype(np.uint64)
    h = np.zeros(len(codes) - n + 1, dtype=np.uint64)
    base = np.uint64(0x100000001B3)
    with np.errstate(over="ignore"):
        for i in range(n):
            h = h * base + x[i : i + len(h)]
    # A position repeats when its n-gram equals a neighbour's in sorted order (a plain sort:
    # 3-4x faster than np.unique with inverse and counts).
    h.sort()
    same = h[1:] == h[:-1]
    repeated = np.zeros(len(h), dtype=bool)
    repeated[1:] = same
    repeated[:-1] |= same
    return float(np.mean(repeated))


@dataclass(frozen=True)
class FilterConfig:
    """Thresholds; a value of 0 (or None for max) disables that filter, and 1 the three maximum
    fractions (0 there means no repeat, or no U+FFFD, at all is allowed)."""

    min_chars: int = 50
    max_chars: int = 2_000_000
    scripts: tuple[str, ...] = ("hiragana", "katakana", "han")
    min_script_ratio: float = 0.05
    min_letter_ratio: float = 0.25
    max_duplicate_line_fraction: float = 0.5
    ngram_size: int = 10
    max_duplicate_ngram_fraction: float = 0.8
    # Share of U+FFFD (what --decode-errors replace leaves for bad bytes). Shift_JIS or EUC-JP
    # read as UTF-8 leaves 0.21-0.71 (UTF-16: 0.06+); the shared corpora's worst real page 0.0008.
    max_replacement_fraction: float = 0.01

    def to_dict(self) -> dict:
        return asdict(self)


def filter_reason(text: str, config: FilterConfig) -> str | None:
    """The first filter that rejects `text`, or None to keep it. Cheap checks first."""
    n = len(text)
    if n < config.min_chars:
        return "too_short"
    if config.max_chars and n > config.max_chars:
        return "too_long"
    if config.max_replacement_fraction < 1 and (
        text.count("\ufffd") > config.max_replacement_fraction * n
    ):
        return "replacement_chars"
    codes = code_points(text)
    counts = script_counts(codes)
    letters = int(counts[1:].sum())
    non_space = n - text.count(" ") - text.count("\n") - text.count("\t")
    if config.min_letter_ratio and letters < config.min_letter_ratio * max(non_space, 1):
        return "too_few_letters"
    if config.min_script_ratio:
        wanted = int(sum(counts[SCRIPTS[s]] for s in config.scripts))
        if wanted < config.min_script_ratio * max(letters, 1):
            return "wrong_script"
    if config.max_duplicate_line_fraction < 1 and (
        duplicate_line_fraction(text) > config.max_duplicate_line_fraction
    ):
        return "repeated_lines"
    max_dup_ngrams = config.max_duplicate_ngram_fraction
    if max_dup_ngrams < 1 and duplicate_ngram_fraction(codes, config.ngram_size) > max_dup_ngrams:
        return "repeated_ngrams"
    return None
