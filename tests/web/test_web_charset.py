"""Charset precedence: a BOM, then the bytes, then declarations, then sniffing; where a
declaration lies and the bytes can tell, the bytes win."""

import pytest

from beam_jobs.web.charset import codec_for, decode_html, meta_charset, strict_decode
from tests.web_fixtures import JA_PAGE, ZH_PAGE

JA = JA_PAGE.format(charset="utf-8")


def page(charset_in_meta: str | None, body: str = JA) -> str:
    if charset_in_meta is None:
        return body.replace("<meta charset='utf-8'>", "")
    return body.replace("charset='utf-8'", f"charset='{charset_in_meta}'")


@pytest.mark.parametrize(
    "label, codec",
    [
        ("Shift_JIS", "cp932"),
        ("x-sjis", "cp932"),
        ("Windows-31J", "cp932"),
        ("EUC-JP", "euc_jp"),
        ("gb2312", "gb18030"),
        ("GBK", "gb18030"),
        ("big5", "big5hkscs"),
        ("euc-kr", "cp949"),
        ("ISO-8859-1", "cp1252"),
        ("utf8", "utf-8"),
        ("ISO-2022-JP", "iso2022_jp"),
        ("no-such-charset", None),
        (None, None),
    ],
)
def test_labels_map_to_whatwg_decoders(label, codec):
    assert codec_for(label) == codec


def test_meta_forms_and_a_meta_past_the_prescan_window():
    assert (
        meta_charset(b'<meta http-equiv="Content-Type" content="text/html; charset=EUC-JP">')
        == "EUC-JP"
    )
    assert meta_charset(b"<?xml version='1.0' encoding='Shift_JIS'?><html>") == "Shift_JIS"
    late = b"<!-- " + b"licence " * 400 + b"--><meta charset=euc-jp>"
    assert len(late) > 1024 and meta_charset(late) == "euc-jp"


@pytest.mark.parametrize(
    "codec, http",
    [
        ("cp932", None),
        ("euc_jp", None),
        ("cp932", "UTF-8"),
        ("cp932", "ISO-8859-1"),
        ("euc_jp", "ISO-8859-1"),
    ],
)
def test_legacy_japanese_without_or_with_a_lying_header(codec, http):
    body = page(None).encode(codec)
    got = decode_html(body, http)
    assert got.text == page(None) and got.charset == codec


def test_meta_lies_and_the_utf8_bytes_win():
    got = decode_html(page("Shift_JIS").encode("utf-8"), None)
    assert (got.text, got.reason, got.declared) == (page("Shift_JIS"), "utf8", "cp932")


def test_stale_meta_and_the_http_header_wins():
    got = decode_html(page("utf-8").encode("cp932"), "Shift_JIS")
    assert (got.text, got.charset, got.reason) == (page("utf-8"), "cp932", "http")


def test_single_byte_header_loses_to_a_multibyte_meta_that_decodes():
    got = decode_html(page("Shift_JIS").encode("cp932"), "ISO-8859-1")
    assert (got.charset, got.reason) == ("cp932", "meta")


def test_bom_ascii_and_iso2022():
    assert decode_html(b"\xef\xbb\xbf" + JA.encode(), "ISO-8859-1").reason == "bom"
    assert decode_html(b"<p>plain</p>", "Shift_JIS").reason == "ascii"
    body = page("ISO-2022-JP").encode("iso2022_jp")
    assert body.isascii()
    got = decode_html(body, "UTF-8")
    assert (got.text, got.charset) == (page("ISO-2022-JP"), "iso2022_jp")


def test_chinese_korean_and_latin_pages():
    zh = ZH_PAGE * 3
    assert decode_html(zh.encode("gbk"), None).text == zh
    ko = "<html lang='ko'><body><p>" + "한국어 페이지입니다. 이것은 시험입니다. " * 20 + "</p>"
    assert decode_html(ko.encode("euc_kr"), "UTF-8").text == ko
    de = "<html><body><p>" + "Größere Übungen für Äpfel und Bären. " * 10 + "</p>"
    got = decode_html(de.encode("cp1252"), "ISO-8859-1")
    assert (got.text, got.reason) == (de, "http")


def test_a_cut_multibyte_character_still_counts_as_valid():
    body = JA.encode("utf-8")[:-1]  # ends inside </html>: cut a character instead
    cut = "<p>日本語".encode()[:-1]
    assert strict_decode(cut, "utf-8") == "<p>日本"
    assert decode_html(body, None).reason == "utf8"


def test_undecidable_bytes_fall_back_with_replacement():
    got = decode_html(bytes(range(128, 256)) * 3, None)
    assert got.text and got.reason in ("sniffed", "fallback_replace")


def test_encoding_option_for_text_input():
    from beam_jobs.web.charset import decode_text, text_codec

    lines = ("吾輩は猫である。名前はまだ無い。\n" * 40).encode("cp932")
    assert text_codec("auto", lines) == "cp932"
    assert text_codec("auto", "日本語\n".encode()) == "utf-8"
    assert text_codec("Shift_JIS") == "cp932" and text_codec("euc-jp") == "euc_jp"
    with pytest.raises(ValueError):
        text_codec("no-such")
    assert decode_text("吾輩".encode("cp932"), "cp932") == "吾輩"
    assert decode_text(b"\xff\xfe\xfa", "cp932") is None
