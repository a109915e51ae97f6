"""Language identification: the shipped lite model, and the --lang / --min-lang-score rule."""

from beam_jobs.web.langid import LangConfig, LanguageIdentifier, parse_langs

JA = "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"
ZH = "这是一个用于测试的中文页面。我们在这里写一些简体中文的句子。"
EN = "This is an English sentence, written for the tests of the language identifier."


def test_identifies_japanese_chinese_english():
    lid = LanguageIdentifier()
    assert [lid.identify(t)[0] for t in (JA, ZH, EN)] == ["ja", "zh", "en"]
    assert 0.9 < lid.identify(JA)[1] <= 1.0


def test_decide_by_language_and_score():
    only_ja = LanguageIdentifier(LangConfig(langs=("ja",), min_score=0.5))
    assert only_ja.decide(JA)[2] == "lang_kept"
    assert only_ja.decide(ZH)[2] == "lang_mismatch"
    assert only_ja.decide("   \n ")[2] == "no_text"
    strict = LanguageIdentifier(LangConfig(langs=("ja", "en"), min_score=1.01))
    assert strict.decide(JA)[2] == "lang_low_score"
    assert LanguageIdentifier().decide(ZH)[:1] == ("zh",)


def test_parse_langs():
    assert parse_langs("ja, EN") == ("ja", "en")
    assert parse_langs("") == () and parse_langs("any") == ()
