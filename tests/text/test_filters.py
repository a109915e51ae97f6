import numpy as np
import pytest
from conftest import PROSE
from hypothesis import given, settings
from hypothesis import strategies as st

from beam_jobs.text.codepoints import code_points
from beam_jobs.text.filters import (
    HAN,
    HIRAGANA,
    KATAKANA,
    LATIN,
    NOT_LETTER,
    FilterConfig,
    duplicate_line_fraction,
    duplicate_ngram_fraction,
    filter_reason,
    resolve_scripts,
    script_table,
)


def test_script_table_classes():
    table = script_table()
    assert table[ord("あ")] == HIRAGANA
    assert table[ord("ア")] == KATAKANA
    assert table[ord("ー")] == KATAKANA
    assert table[ord("漢")] == HAN and table[ord("々")] == HAN
    assert table[ord("a")] == LATIN and table[ord("é")] == LATIN
    assert table[ord("1")] == table[ord("。")] == table[ord(" ")] == NOT_LETTER


def test_prose_passes():
    assert filter_reason(PROSE, FilterConfig()) is None


def test_length_filters():
    assert filter_reason("短い", FilterConfig()) == "too_short"
    assert filter_reason(PROSE, FilterConfig(max_chars=10)) == "too_long"


def test_letters_and_scripts():
    assert filter_reason("1234 5678 %%%% ---- " * 5, FilterConfig()) == "too_few_letters"
    english = (
        "This page has not been translated yet. It is English only, and a Japanese "
        "corpus should not keep it unless the user asks for Latin script."
    )
    assert filter_reason(english, FilterConfig()) == "wrong_script"
    assert filter_reason(english, FilterConfig(scripts=resolve_scripts("latin"))) is None
    assert filter_reason(english, FilterConfig(min_script_ratio=0)) is None


def test_repetition_filters():
    repeated = "\n".join(["同じ行がここで何度も繰り返されます"] * 20)
    assert duplicate_line_fraction(repeated) == pytest.approx(19 / 20)
    assert filter_reason(repeated, FilterConfig()) == "repeated_lines"
    one_line = "ボタンをクリック" * 40
    assert duplicate_ngram_fraction(code_points(one_line), 10) > 0.9
    assert filter_reason(one_line, FilterConfig()) == "repeated_ngrams"
    assert duplicate_ngram_fraction(code_points(PROSE), 10) == 0.0


def test_duplicate_ngram_fraction_matches_a_plain_count():
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list("あいうえお"), size=300))
    grams = [text[i : i + 4] for i in range(len(text) - 3)]
    expected = sum(grams.count(g) > 1 for g in grams) / len(grams)
    assert duplicate_ngram_fraction(code_points(text), 4) == pytest.approx(expected)


def test_resolve_scripts():
    assert resolve_scripts("ja,latin") == ("hiragana", "katakana", "han", "latin")
    with pytest.raises(ValueError, match="unknown script"):
        resolve_scripts("klingon")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="あいう", max_size=60), st.integers(min_value=1, max_value=5))
def test_duplicate_ngram_fraction_matches_a_plain_count_on_any_text(text, n):
    from collections import Counter

    grams = [text[i : i + n] for i in range(len(text) - n + 1)]
    counts = Counter(grams)
    expected = sum(counts[g] > 1 for g in grams) / len(grams) if len(text) >= n + 1 else 0.0
    assert duplicate_ngram_fraction(code_points(text), n) == pytest.approx(expected)
