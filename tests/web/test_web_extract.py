"""HTML to text under a size and a time bound."""

import pytest

from beam_jobs.web.extract import ExtractConfig, Extractor, html_to_text
from tests.web_fixtures import JA_PAGE

# Resiliparse's main-content pass is worse than quadratic in nesting depth: 6,000 nested
# <div> take seconds (20,000: hours), while the parser alone takes milliseconds.
SLOW_PAGE = "<html><body>" + "<div>" * 6000 + "x" + "</div>" * 6000


def test_main_content_text():
    text = html_to_text(JA_PAGE.format(charset="utf-8"))
    assert "吾輩は猫である。名前はまだ無い。" in text and "<p>" not in text


@pytest.mark.parametrize("timeout_s", [0, 5.0])
def test_extractor_in_process_and_in_its_child(timeout_s):
    ex = Extractor(ExtractConfig(timeout_s=timeout_s))
    try:
        got = ex.extract(JA_PAGE.format(charset="utf-8"))
        assert got.reason == "ok" and "名前はまだ無い" in got.text
        assert ex.extract("<html><body><script>x()</script></body></html>").reason == ("empty_text")
    finally:
        ex.close()


def test_size_bound():
    ex = Extractor(ExtractConfig(max_html_chars=100, timeout_s=0))
    assert ex.extract("<p>" + "a" * 200 + "</p>").reason == "html_too_large"


def test_time_bound_kills_the_slow_page_and_the_next_page_is_fine():
    ex = Extractor(ExtractConfig(timeout_s=0.3))
    try:
        assert ex.extract(JA_PAGE.format(charset="utf-8")).reason == "ok"  # child started
        assert ex.extract(SLOW_PAGE).reason == "extract_timeout"
        assert ex.extract(JA_PAGE.format(charset="utf-8")).reason == "ok"
    finally:
        ex.close()
