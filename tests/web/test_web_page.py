"""One record → a document or a named reason."""

from beam_jobs.web import page, warc
from beam_jobs.web.extract import ExtractConfig
from beam_jobs.web.langid import LangConfig
from tests.web_fixtures import (
    EN_PAGE,
    JA_PAGE,
    ZH_PAGE,
    conversion,
    members,
    request,
    response,
    revisit,
    warcinfo,
)

URI = "https://a.example/"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def outcomes(records, config=page.WebConfig(extract=ExtractConfig(timeout_s=0))):
    proc = page.PageProcessor(config)
    try:
        return [proc.process(r) for r in warc.iter_records(members(records))]
    finally:
        proc.close()


def test_kinds_and_reasons():
    got = outcomes(
        [
            warcinfo(),
            request(URI),
            revisit(URI),
            response(URI + "1", JA_PAGE.format(charset="Shift_JIS").encode("cp932")),
            response(URI + "2", b"moved", status=301),
            response(URI + "3", PNG, content_type="image/png"),
            response(URI + "4", PNG, content_type="text/html"),  # a misconfigured server
            response(URI + "5", bytes(range(256)) * 16),  # garbage served as HTML
            response(URI + "6", b"<html><body><script>1</script></body></html>"),
            conversion(URI + "7", "本文のテキストです。これは日本語の文章です。"),
        ]
    )
    assert [(o.kind, o.reason) for o in got] == [
        ("skipped", "skip_warcinfo"),
        ("skipped", "skip_request"),
        ("skipped", "skip_revisit"),
        ("document", "kept"),
        ("filtered", "http_301"),
        ("filtered", "non_html"),
        ("filtered", "binary_payload"),
        ("filtered", "binary_payload"),
        ("filtered", "empty_text"),
        ("document", "kept"),
    ]
    doc = got[3].doc
    assert doc["charset"] == "cp932" and doc["lang"] == "ja" and doc["url"] == URI + "1"
    assert "名前はまだ無い" in doc["raw_text"] and doc["http_status"] == 200
    assert got[9].doc["raw_text"].startswith("本文")


def test_lang_filter_and_dead_letters():
    config = page.WebConfig(extract=ExtractConfig(timeout_s=0), lang=LangConfig(langs=("ja",)))
    got = outcomes(
        [
            response(URI + "ja", JA_PAGE.format(charset="utf-8").encode()),
            response(URI + "zh", ZH_PAGE.encode()),
            response(URI + "en", EN_PAGE.encode()),
        ],
        config,
    )
    assert [(o.kind, o.reason, o.lang) for o in got] == [
        ("document", "kept", "ja"),
        ("filtered", "lang_mismatch", "zh"),
        ("filtered", "lang_mismatch", "en"),
    ]
    bad = warc.Record(10, 5, "unknown", error="gzip_corrupt")
    assert page.classify(bad) == ("rejected", "gzip_corrupt")


def test_looks_binary():
    assert page.looks_binary(PNG) and page.looks_binary(b"%PDF-1.4\n")
    assert not page.looks_binary(JA_PAGE.encode("cp932"))
    assert not page.looks_binary("<p>テキスト</p>".encode("utf-16"))
