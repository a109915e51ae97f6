import gzip
import json
import random
from collections import Counter

import pytest
from conftest import SAMPLE
from hypothesis import given, settings
from hypothesis import strategies as st

from beam_jobs.text.codepoints import code_points
from beam_jobs.text.normalize import normalize_text
from beam_jobs.text.presets import PRESET_NAMES, get_preset, preset_reason
from beam_jobs.text.presets.swallow import (
    SWALLOW_REASONS,
    SwallowConfig,
    duplicate_shares,
    ngram_shares,
    sentences,
    swallow_failures,
    swallow_reason,
)

HIRAGANA = [chr(c) for c in range(0x3041, 0x3094)]
KANJI = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]


def prose(seed: int = 0, n: int = 20, katakana: float = 0.0) -> str:
    """Varied Japanese sentences of 30-60 characters (60% hiragana): no repeated n-grams to
    speak of, every share inside the Swallow bounds."""
    rng = random.Random(seed)
    kata = [chr(c) for c in range(0x30A1, 0x30F7)]
    out = []
    for _ in range(n):
        k = rng.randint(30, 60)
        chars = [
            rng.choice(kata)
            if rng.random() < katakana
            else rng.choice(HIRAGANA)
            if rng.random() < 0.6
            else rng.choice(KANJI)
            for _ in range(k)
        ]
        out.append("".join(chars) + "。")
    return "".join(out[i] + ("\n" if i % 4 == 3 else "") for i in range(n)).strip()


def test_generated_prose_passes():
    assert swallow_failures(prose()) == []


def test_each_rule_has_its_reason():
    base = prose()
    cases = {
        "swallow_too_short": base[:300],
        "swallow_not_japanese": base + "\n" + "This line is English text. " * 80,
        "swallow_few_hiragana": "。".join(
            "".join(random.Random(i).choices(KANJI, k=40)) for i in range(20)
        )
        + "。",
        "swallow_many_katakana": prose(katakana=0.8),
        "swallow_short_sentences": "".join(
            base[i : i + 10] + "。" for i in range(0, len(base), 10)
        ),
        "swallow_long_sentences": base.replace("。", "、", 15),
        "swallow_longest_sentence": base
        + "\n"
        + "".join(random.Random(2).choices(HIRAGANA, k=260)),
        "swallow_ellipsis": base.replace("。", "…\n"),
        "swallow_duplicate_paragraphs": "\n".join([base] + [sentences(base)[0]] * 8),
    }
    for reason, text in cases.items():
        assert reason in swallow_failures(text), reason


def test_repetition_rules():
    line = prose(n=1)
    repeated = "\n".join([line] * 6)
    failures = swallow_failures(repeated)
    assert {
        "swallow_duplicate_paragraphs",
        "swallow_duplicate_sentences",
        "swallow_duplicate_paragraph_chars",
        "swallow_duplicate_10gram",
    } <= set(failures)
    assert "swallow_top_2gram" in swallow_failures(prose() + "ああ" * 400)


def test_first_reason_is_first_failure_and_names_are_declared():
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as handle:
        texts = [normalize_text(json.loads(line)["text"]) for line in handle][:120]
    seen = Counter()
    for text in texts:
        failures = swallow_failures(text)
        assert swallow_reason(text) == (failures[0] if failures else None)
        assert set(failures) <= set(SWALLOW_REASONS)
        seen.update(failures[:1])
    assert len(seen) >= 3  # real text trips several different rules


def test_sentences_on_nfkc_and_raw_text():
    assert sentences("今日は晴れ。明日は雨！本当？") == ["今日は晴れ。", "明日は雨！", "本当？"]
    assert sentences("終わり。。次\n改行") == ["終わり。。", "次", "改行"]
    # NFKC turns ． into "."; a lone dot ends a sentence, decimals, domains and dots do not.
    assert sentences("Python 3.11 を使う. example.com を見る...そして") == [
        "Python 3.11 を使う.",
        " example.com を見る...そして",
    ]
    assert sentences(normalize_text("一文目．二文目．")) == ["一文目.", "二文目."]


def test_ellipsis_in_both_forms():
    base = prose()
    raw = base.replace("。", "…\n")
    assert "swallow_ellipsis" in swallow_failures(raw)
    assert "swallow_ellipsis" in swallow_failures(normalize_text(raw))  # … became ...


def test_blank_lines_are_not_duplicate_paragraphs():
    text = "\n\n".join(prose(seed=i, n=3) for i in range(6))
    assert swallow_failures(text) == []


def test_duplicate_shares():
    assert duplicate_shares(["ab", "cd", "ab", "ab"]) == (0.5, pytest.approx(4 / 8))
    assert duplicate_shares([]) == (0.0, 0.0)


def oracle_ngram_shares(text: str, n: int) -> tuple[float, float]:
    grams = Counter(text[i : i + n] for i in range(len(text) - n + 1))
    total = sum(grams.values())
    return max(grams.values()) / total, sum(1 for f in grams.values() if f > 1) / len(grams)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="あいうアイ漢字\n.。", min_size=0, max_size=300))
def test_ngram_shares_match_counter(text):
    got = {n: (top, dup) for n, top, dup in ngram_shares(code_points(text), 10)}
    for n in range(2, 11):
        if len(text) >= n:
            assert got[n] == pytest.approx(oracle_ngram_shares(text, n))
        else:
            assert n not in got


def test_thresholds_are_configurable():
    text = prose()[:300]
    assert swallow_reason(text) == "swallow_too_short"
    assert swallow_reason(text, SwallowConfig(min_chars=100, min_japanese_letters=100)) is None


def test_registry():
    assert PRESET_NAMES == ("none", "swallow", "hojichar")
    assert get_preset("none") is None and preset_reason("x", "none") is None
    assert get_preset("swallow").reasons == SWALLOW_REASONS
    assert preset_reason("短い", "swallow") == "swallow_too_short"
    with pytest.raises(ValueError, match="unknown quality preset"):
        get_preset("gopher")
