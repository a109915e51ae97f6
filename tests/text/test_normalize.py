import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beam_jobs.text.normalize import NormalizeConfig, dedup_key, fold_whitespace, normalize_text


def test_voiced_kana_stay_distinct_from_unvoiced():
    for voiced, plain in (("が", "か"), ("ぱ", "は"), ("ば", "は"), ("ヴ", "ウ")):
        assert normalize_text(voiced) == voiced
        assert normalize_text(voiced) != normalize_text(plain)
        assert dedup_key(voiced) != dedup_key(plain)


def test_decomposed_voicing_marks_compose():
    decomposed = unicodedata.normalize("NFD", "がぱ")
    assert len(decomposed) == 4
    assert normalize_text(decomposed) == "がぱ"


def test_halfwidth_katakana_and_fullwidth_latin():
    assert normalize_text("ｶﾞｷﾞｸﾞ") == "ガギグ"
    assert normalize_text("ﾊﾟﾝ") == "パン"
    assert normalize_text("ＡＢＣ１２３") == "ABC123"
    assert normalize_text("ＡＢＣ", NormalizeConfig(lowercase=True)) == "abc"
    assert dedup_key("ＡＢＣ") == "abc"


def test_seed_punctuation_to_space_after_nfkc():
    # ､ (half-width) and ！？， (full-width) become their NFKC forms before matching.
    text = "今日は。晴れ､明日は，雨!本当?はい！いいえ？a,b.c"
    out = normalize_text(text, NormalizeConfig(punct_to_space=True, whitespace="all"))
    assert out == "今日は 晴れ 明日は 雨 本当 はい いいえ a b c"
    # Off by default for the training text: an LM should learn punctuation.
    assert "。" in normalize_text(text)


def test_line_breaks_and_control_characters():
    text = "a\r\nb\rc\u2028d\u2029e\x0cf\x85g\x00h\ufeffi\u200bj"
    assert normalize_text(text) == "a\nb\nc\nd\ne\nf\nghij"


def test_whitespace_modes():
    text = "  行1\u3000 の\t内容  \n\n\n\n  行2  "
    assert (
        fold_whitespace(normalize_text(text, NormalizeConfig(whitespace="none")), "lines")
        == "行1 の 内容\n\n行2"
    )
    assert normalize_text(text) == "行1 の 内容\n\n行2"
    assert normalize_text(text, NormalizeConfig(whitespace="all")) == "行1 の 内容 行2"


def test_dedup_key_ignores_case_width_spacing_and_wrapping():
    a = "Pythonは\nとても 便利です。"
    b = "ＰＹＴＨＯＮは とても　便利です"
    assert dedup_key(a) == dedup_key(b) == "pythonは とても 便利です"


def test_training_text_and_key_are_separate():
    text = "Hello, World!"
    assert normalize_text(text) == "Hello, World!"
    assert dedup_key(text) == "hello world"


@pytest.mark.parametrize("text", ["", " ", "\n\n", "🙂‍↔️", "ש\u05b8לוֹם", "e\u0301"])
def test_normalization_is_idempotent_on_odd_text(text):
    once = normalize_text(text)
    assert normalize_text(once) == once
    assert dedup_key(dedup_key(text)) == dedup_key(text)


def test_bad_config_is_refused():
    with pytest.raises(ValueError):
        NormalizeConfig(whitespace="tabs")
    with pytest.raises(ValueError):
        NormalizeConfig(form="NFD")


@settings(max_examples=400, deadline=None)
@given(st.text(), st.booleans(), st.booleans(), st.sampled_from(["all", "lines", "none"]))
def test_normalization_never_raises_and_is_idempotent(text, lowercase, punct, whitespace):
    config = NormalizeConfig(lowercase=lowercase, punct_to_space=punct, whitespace=whitespace)
    once = normalize_text(text, config)
    assert normalize_text(once, config) == once
    key = dedup_key(text)
    assert dedup_key(key) == key
    assert dedup_key(once) == dedup_key(normalize_text(once, config))


WHITESPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2028\u2029\u202f\u205f\u3000"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(WHITESPACE) + list("aあ、"))) | st.text())
def test_whitespace_folding_equals_its_regex_definition(text):
    import re

    from beam_jobs.text.normalize import fold_whitespace

    assert fold_whitespace(text, "all") == re.sub(r"\s+", " ", text).strip()
    lines = "\n".join(line.strip() for line in re.sub(r"[^\S\n]+", " ", text).split("\n"))
    assert fold_whitespace(text, "lines") == re.sub(r"\n{3,}", "\n\n", lines).strip()
