import functools
import gzip
import json
import random

import pytest
from conftest import PROSE, SAMPLE
from hojichar import Document
from hojichar import document_filters as hf
from hypothesis import given, settings
from hypothesis import strategies as st

from beam_jobs.text.normalize import normalize_text
from beam_jobs.text.presets import get_preset
from beam_jobs.text.presets import hojichar_fast as fast
from beam_jobs.text.presets.hojichar_preset import (
    HOJICHAR_REASONS,
    hojichar_failures,
    hojichar_reason,
)


@functools.cache
def sample_texts(limit: int = 200) -> list[str]:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as handle:
        return [normalize_text(json.loads(line)["text"]) for line in handle][:limit]


EDGE_CASES = [
    "",
    "あ" * 199,
    "あ" * 200,
    "x" + "ー" * 300,
    "アスパラガス",
    "アス",
    "「アス」",
    "インポート",
    "インポ",
    "スケジュール",
    "スケ",
    "ちつ",
    "abc",
]
PAIRS = [
    (hf.SingleCharacterRepetitionFilter(), fast.SingleCharacterRepetitionFilter()),
    (
        hf.SingleCharacterRepetitionFilter(threshold=3),
        fast.SingleCharacterRepetitionFilter(threshold=3),
    ),
    (hf.CharRepetitionRatioFilter(), fast.CharRepetitionRatioFilter()),
    (
        hf.CharRepetitionRatioFilter(threshold=0.1, ngram_size=3),
        fast.CharRepetitionRatioFilter(threshold=0.1, ngram_size=3),
    ),
    (hf.DiscardAdultContentJa(), fast.DiscardAdultContentJa()),
    (
        hf.DiscardAdultContentJa(ignore_confused=True),
        fast.DiscardAdultContentJa(ignore_confused=True),
    ),
    (
        hf.DiscardDiscriminationContentJa(ignore_confused=True),
        fast.DiscardDiscriminationContentJa(ignore_confused=True),
    ),
]


@pytest.mark.parametrize("original,ours", PAIRS, ids=lambda f: type(f).__name__)
def test_fast_paths_decide_as_hojichar(original, ours):
    texts = sample_texts() + EDGE_CASES
    got = [ours.apply(Document(t)).is_rejected for t in texts]
    assert got == [original.apply(Document(t)).is_rejected for t in texts]
    assert any(got) or type(ours).__name__ == "SingleCharacterRepetitionFilter"


def test_bbs_digit_runs_are_tried_once():
    ours = fast.DiscardBBSComments()
    assert r"(?<!\d)\d+話" in ours.keyword_pat.pattern  # HojiChar's pattern still has the branch
    text = "第12話 13話 2024年1月2日 123話" + "7" * 50
    assert (
        len(ours.keyword_pat.findall(text))
        == len(hf.DiscardBBSComments().keyword_pat.findall(text))
        == 4
    )


def test_long_words_and_boundaries():
    path = hf.DiscardDiscriminationContentJa.__init__.__defaults__[0]
    long_words = [w for w in fast._read_words(path) if len(w) > fast._MAX_HASHED]
    assert long_words  # the lists hold words longer than the hashed lengths
    original = hf.DiscardDiscriminationContentJa(ignore_confused=True)
    ours = fast.DiscardDiscriminationContentJa(ignore_confused=True)
    for word in long_words:
        for text in ("あ" + word + "い", "ア" + word, word):
            assert (
                ours.apply(Document(text)).is_rejected == original.apply(Document(text)).is_rejected
            )


ADULT = fast._read_words(hf.DiscardAdultContentJa.__init__.__defaults__[0])
REGEXES = {
    ignore: hf.DiscardAdultContentJa(ignore_confused=ignore).keyword_pat for ignore in (False, True)
}
MATCHERS = {ignore: fast.KeywordMatcher(ADULT, katakana_bounded=ignore) for ignore in REGEXES}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "アス",
                "パラ",
                "イク",
                "ちつ",
                "あ",
                "ー",
                "A",
                "V",
                " ",
                "インポ",
                "ート",
                "スケ",
                "ジュール",
            ]
        ),
        max_size=12,
    )
)
def test_keyword_matcher_matches_the_regex(parts):
    text = "".join(parts)
    for ignore, matcher in MATCHERS.items():
        assert matcher.search(text) == bool(REGEXES[ignore].search(text))


def test_char_repetition_ratio_matches_hojichar():
    rng = random.Random(0)
    for _ in range(50):
        text = "".join(rng.choices("あいうえおかきくけこ", k=rng.randint(0, 400)))
        expected = hf.CharRepetitionRatioFilter.compute_character_repetition_ratio(text, 5)
        assert fast.char_repetition_ratio(text, 5) == pytest.approx(expected)


def test_reasons():
    assert hojichar_reason("This is an English document. " * 10) == "hojichar_not_japanese"
    assert hojichar_reason(PROSE) == "hojichar_length"  # under 100 characters
    long_prose = "\n".join([PROSE[:60], PROSE[60:]] * 3)
    # Substring matching: 薄暗いじめじめ holds いじめ (bullying), so Soseki's opening fails.
    assert hojichar_failures(long_prose) == ["hojichar_violence_ja"]
    clean = long_prose.replace("薄暗いじめじめ", "薄暗くじめじめ")
    assert hojichar_failures(clean) == [] and hojichar_reason(clean) is None
    failures = hojichar_failures("ほうじ茶" + "あ" * 250)
    assert "hojichar_single_char_repetition" in failures
    assert "hojichar_rare_kuten" in failures
    for text in sample_texts(120):
        failures = hojichar_failures(text)
        assert hojichar_reason(text) == (failures[0] if failures else None)
        assert set(failures) <= set(HOJICHAR_REASONS)
    assert get_preset("hojichar").reasons == HOJICHAR_REASONS


def test_nothing_is_downloaded(monkeypatch):
    import socket

    from beam_jobs.text.presets import hojichar_preset

    def refuse(*args, **kwargs):
        raise AssertionError("the HojiChar preset opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    hojichar_preset._filters.cache_clear()  # build every filter again, offline
    assert hojichar_reason("ほうじ茶" * 40 + "。") is not None
    assert hojichar_preset._filters.cache_info().currsize == 1


def test_preset_functions_pickle():
    import pickle

    fn = pickle.loads(pickle.dumps(get_preset("hojichar").reason))
    assert fn("This is English text. " * 10) == "hojichar_not_japanese"
