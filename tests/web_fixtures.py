"""WARC records made in the tests (CI has no ../shared): every kind of record, damage, and
payloads too large to hold, generated lazily."""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
import uuid
import zlib

JA_PAGE = (
    "<html lang='ja'><head><meta charset='{charset}'><title>テスト</title></head><body>"
    "<h1>吾輩は猫である</h1><p>吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当が"
    "つかぬ。何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。</p>"
    "<p>吾輩はここで始めて人間というものを見た。しかもあとで聞くとそれは書生という人間中で"
    "一番獰悪な種族であったそうだ。</p></body></html>"
)
ZH_PAGE = (
    "<html lang='zh-CN'><head><title>测试</title></head><body><p>"
    "这是一个用于测试的中文页面。我们在这里写一些简体中文的句子，以便语言识别程序能够判断它的语言。今天天气很好，"
    "我们去公园散步吧。</p></body></html>"
)
EN_PAGE = (
    "<html><head><title>Test</title></head><body><p>This is an English page used in the "
    "tests. It has enough words in ordinary sentences for a language identifier to be "
    "sure of the language it is written in.</p></body></html>"
)


def record_id(name: str) -> str:
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}>"


def warc_record(
    kind: str, block: bytes, name: str, headers: dict | None = None, digest: bool = True
) -> bytes:
    fields = {
        "WARC-Type": kind,
        "WARC-Record-ID": record_id(name),
        "WARC-Date": "2026-11-20T00:00:00Z",
        **(headers or {}),
    }
    if digest:
        sha1 = base64.b32encode(hashlib.sha1(block).digest()).decode()
        fields["WARC-Block-Digest"] = f"sha1:{sha1}"
    fields["Content-Length"] = str(len(block))
    head = "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return b"WARC/1.0\r\n" + head.encode() + b"\r\n" + block + b"\r\n\r\n"


def http_block(body: bytes, status: int = 200, content_type: str = "text/html") -> bytes:
    reason = {200: "OK", 301: "Moved Permanently", 404: "Not Found"}.get(status, "X")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def response(
    uri: str,
    body: bytes,
    status: int = 200,
    content_type: str = "text/html",
    headers: dict | None = None,
) -> bytes:
    return warc_record(
        "response",
        http_block(body, status, content_type),
        uri,
        {
            "WARC-Target-URI": uri,
            "Content-Type": "application/http; msgtype=response",
            **(headers or {}),
        },
    )


def request(uri: str) -> bytes:
    block = f"GET / HTTP/1.1\r\nHost: {uri.split('/')[2]}\r\n\r\n".encode()
    return warc_record("request", block, "req:" + uri, {"WARC-Target-URI": uri})


def warcinfo() -> bytes:
    return warc_record(
        "warcinfo", b"software: tests\r\n", "info", {"Content-Type": "application/warc-fields"}
    )


def metadata(uri: str) -> bytes:
    return warc_record(
        "metadata",
        b"via: https://a.example/\r\n",
        "meta:" + uri,
        {"WARC-Target-URI": uri, "Content-Type": "application/warc-fields"},
    )


def revisit(uri: str) -> bytes:
    block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n"
    return warc_record(
        "revisit",
        block,
        "revisit:" + uri,
        {
            "WARC-Target-URI": uri,
            "WARC-Profile": "http://netpreserve.org/warc/1.0/revisit/identical-payload-digest",
        },
    )


def conversion(uri: str, text: str) -> bytes:
    return warc_record(
        "conversion",
        text.encode(),
        "wet:" + uri,
        {"WARC-Target-URI": uri, "Content-Type": "text/plain"},
    )


def members(records: list[bytes]) -> bytes:
    """One gzip member per record, as Common Crawl writes them."""
    return b"".join(gzip.compress(r, mtime=0) for r in records)


def lie(record: bytes, delta: int) -> bytes:
    """The record with its WARC Content-Length off by `delta`."""
    head, sep, rest = record.partition(b"\r\n\r\n")
    head = re.sub(
        rb"Content-Length: (\d+)", lambda m: b"Content-Length: %d" % (int(m.group(1)) + delta), head
    )
    return head + sep + rest


def huge_member(uri: str, size: int) -> bytes:
    """A gzip member holding a response with a `size`-byte payload, compressed as it is
    made (size / 1000 bytes of output for a run of one letter): nothing of `size` exists."""
    http = (
        f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {size}\r\n\r\n"
    ).encode()
    head = (
        f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: {record_id(uri)}\r\n"
        f"WARC-Target-URI: {uri}\r\nContent-Length: {len(http) + size}\r\n\r\n"
    ).encode()
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    parts = [comp.compress(head + http)]
    chunk = b"a" * (1 << 20)
    for start in range(0, size, len(chunk)):
        parts.append(comp.compress(chunk[: min(len(chunk), size - start)]))
    parts.append(comp.compress(b"\r\n\r\n"))
    parts.append(comp.flush())
    return b"".join(parts)


class LazyWarc:
    """A plain WARC file object: `before`, one response record with a `size`-byte payload
    generated as it is read, then `after`. Reads never allocate more than asked."""

    def __init__(self, before: bytes, size: int, after: bytes):
        http = (
            f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {size}\r\n\r\n"
        ).encode()
        head = (
            f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: {record_id('huge')}\r\n"
            f"Content-Length: {len(http) + size}\r\n\r\n"
        ).encode()
        self.parts = [before, head + http, size, b"\r\n\r\n" + after]
        self.total = len(before) + len(head + http) + size + 4 + len(after)

    def read(self, n: int = -1) -> bytes:
        out = []
        n = self.total if n < 0 else n
        while n > 0 and self.parts:
            part = self.parts[0]
            if isinstance(part, int):
                take = min(part, n)
                out.append(b"a" * take)
                self.parts[0] = part - take
                if self.parts[0] == 0:
                    self.parts.pop(0)
            else:
                out.append(part[:n])
                take = len(out[-1])
                if take == len(part):
                    self.parts.pop(0)
                else:
                    self.parts[0] = part[take:]
            n -= take
        return b"".join(out)


SLOW_PAGE = "<html lang='ja'><body>" + "<div>" * 6000 + "吾輩は猫である" + "</div>" * 6000
U = "https://a.example/"


def crawl_gz() -> bytes:
    ja = JA_PAGE.format(charset="Shift_JIS").encode("cp932")
    parts = [
        members(
            [
                warcinfo(),
                request(U + "ja"),
                response(U + "ja", ja, content_type="text/html; charset=ISO-8859-1"),
                metadata(U + "ja"),
                response(U + "zh", ZH_PAGE.encode()),
                response(U + "en", EN_PAGE.encode()),
                response(U + "404", b"Not Found", status=404),
                response(U + "png", b"\x89PNG\r\n\x1a\n" + bytes(256), content_type="image/png"),
                response(U + "garbage", bytes(range(256)) * 64),
                lie(response(U + "lie", JA_PAGE.format(charset="utf-8").encode()), 700),
            ]
        ),
        gzip.compress(response(U + "cut", JA_PAGE.encode())[:90], mtime=0)[:-30],  # cut member
        huge_member(U + "huge", 100 << 20),
        members([response(U + "slow", SLOW_PAGE.encode()), revisit(U + "ja")]),
    ]
    return b"".join(parts)


def write_inputs(tmp_path):
    (tmp_path / "crawl-00000.warc.gz").write_bytes(crawl_gz())
    (tmp_path / "plain.warc").write_bytes(
        b"".join([warcinfo(), response(U + "p", JA_PAGE.format(charset="utf-8").encode())])
    )
    (tmp_path / "text.wet.gz").write_bytes(
        members([warcinfo(), conversion(U + "w", "これは日本語の文章です。吾輩は猫である。")])
    )
    return str(tmp_path / "*")
