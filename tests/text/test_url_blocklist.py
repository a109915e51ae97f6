import pytest

from beam_jobs.text.urls import URL_BLOCKED, UrlBlocklist, normalize_host

LIST = """\
# ads and trackers
example.com
*.ads.net            # subdomains, and the domain itself
.cdn.example.org
0.0.0.0 track.org t2.org
https://news.site/ads/
blog.jp/private
例え.jp
10.0.0.1

"""


@pytest.fixture(scope="module")
def blocklist():
    return UrlBlocklist.from_lines(LIST.splitlines())


@pytest.mark.parametrize(
    "url,entry",
    [
        ("http://example.com/", "example.com"),
        ("https://a.b.example.com/x?y=1", "example.com"),
        ("HTTP://User:pw@EXAMPLE.COM.:8080/", "example.com"),
        ("example.com/no/scheme", "example.com"),
        ("https://x.ads.net/", "ads.net"),
        ("http://ads.net", "ads.net"),
        ("http://img.cdn.example.org/a.png", "cdn.example.org"),
        ("http://t2.org/", "t2.org"),
        ("https://news.site/ads/banner", "news.site/ads/"),
        ("http://news.site/ads/", "news.site/ads/"),
        ("https://blog.jp/private/diary", "blog.jp/private"),
        ("http://xn--r8jz45g.jp/", "xn--r8jz45g.jp"),
        ("http://例え.JP/", "xn--r8jz45g.jp"),
        ("http://sub.例え.jp/", "xn--r8jz45g.jp"),
        ("http://10.0.0.1:8000/", "10.0.0.1"),
    ],
)
def test_blocked(blocklist, url, entry):
    assert blocklist.match(url) == entry


@pytest.mark.parametrize(
    "url",
    [
        "http://badexample.com/",
        "http://example.co/",
        "http://example.com.evil.net/",
        "https://news.site/",
        "https://news.site/ADS/x",
        "https://sub.news.site/ads/x",
        "https://blog.jp/public",
        "http://0.0.1/",
        "http://1.10.0.0.1/",
        "http://[::1]/",
        "http://[::1",
        "",
        None,
        "not a url",
        "mailto:someone@example.net",
        "file:///etc/passwd",
    ],
)
def test_not_blocked(blocklist, url):
    assert blocklist.match(url) is None


def test_file_and_errors(tmp_path):
    path = tmp_path / "block.txt"
    path.write_text(LIST, encoding="utf-8")
    assert len(UrlBlocklist.from_file(str(path))) == 9
    with pytest.raises(ValueError, match=r"block.txt:2: one entry a line"):
        UrlBlocklist.from_lines(["ok.com", "two entries.com here.com"], source="block.txt")
    with pytest.raises(ValueError, match=r":1: not a domain"):
        UrlBlocklist.from_lines(["nodot"])
    assert URL_BLOCKED == "blocked_url"


def test_normalize_host():
    assert normalize_host("WWW.Example.COM.") == "www.example.com"
    assert normalize_host("例え.jp") == "xn--r8jz45g.jp"


def test_large_list_is_a_set_lookup():
    domains = [f"site{i}.example{i % 97}.com" for i in range(100_000)]
    blocklist = UrlBlocklist.from_lines(domains + ["big.org/a/b"])
    assert len(blocklist) == 100_001
    assert (
        blocklist.match("https://deep.sub.site99999.example89.com/x") == "site99999.example89.com"
    )
    assert blocklist.match("https://site99999.example88.com/") is None
    assert blocklist.match("https://big.org/a/b/c") == "big.org/a/b"


def test_blocklist_pickles_for_workers(blocklist):
    import pickle

    again = pickle.loads(pickle.dumps(blocklist))
    assert again.match("https://a.example.com/") == "example.com"
    assert again.match("https://news.site/ads/x") == "news.site/ads/"
