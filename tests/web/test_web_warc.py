"""WARC/WET framing and parsing: every record kind, and damage that must cost one record
(with its offset and reason), never the rest of the file."""

import gzip
import io
import tracemalloc

import pytest

from beam_jobs.web import warc
from tests.web_fixtures import (
    JA_PAGE,
    LazyWarc,
    conversion,
    huge_member,
    lie,
    members,
    metadata,
    record_id,
    request,
    response,
    revisit,
    warcinfo,
)

URI = "https://a.example/ja/page.html"


def crawl() -> list[bytes]:
    return [
        warcinfo(),
        request(URI),
        response(URI, JA_PAGE.format(charset="utf-8").encode()),
        metadata(URI),
        revisit(URI + "?b"),
        response(URI + "?404", b"gone", status=404),
    ]


def outcomes(data) -> list[str]:
    return [r.error or r.kind for r in warc.iter_records(data)]


def check_spans(data: bytes) -> None:
    """The frames tile the file: every byte belongs to exactly one frame."""
    frames = list(warc.frames(data))
    assert [f.offset for f in frames] == [0] + [
        sum(f.length for f in frames[:i]) for i in range(1, len(frames))
    ]
    assert sum(f.length for f in frames) == len(data)


@pytest.mark.parametrize("gz", [True, False])
def test_every_kind_in_order_with_fields(gz):
    records = crawl()
    data = members(records) if gz else b"".join(records)
    parsed = list(warc.iter_records(data))
    assert [r.kind for r in parsed] == [
        "warcinfo",
        "request",
        "response",
        "metadata",
        "revisit",
        "response",
    ]
    page = parsed[2]
    assert page.record_id == record_id(URI) and page.uri == URI
    assert (page.http_status, page.content_type, page.date) == (
        200,
        "text/html",
        "2026-11-20T00:00:00Z",
    )
    assert page.payload == JA_PAGE.format(charset="utf-8").encode()
    assert parsed[5].http_status == 404
    starts = [0]
    for rec in records[:-1]:
        starts.append(starts[-1] + len(gzip.compress(rec, mtime=0) if gz else rec))
    assert [r.offset for r in parsed] == starts
    check_spans(data)


def test_wet_conversion_carries_text():
    (rec,) = warc.iter_records(members([conversion(URI, "本文です。")]))
    assert (rec.kind, rec.content_type, rec.payload.decode()) == (
        "conversion",
        "text/plain",
        "本文です。",
    )


@pytest.mark.parametrize("delta", [500, -500, 3])
@pytest.mark.parametrize("gz", [True, False])
def test_lying_content_length_costs_one_record(gz, delta):
    records = crawl()
    records[2] = lie(records[2], delta)
    data = members(records) if gz else b"".join(records)
    assert outcomes(data) == [
        "warcinfo",
        "request",
        "content_length_mismatch",
        "metadata",
        "revisit",
        "response",
    ]
    check_spans(data)


def test_gzip_member_cut_in_half():
    parts = [gzip.compress(r, mtime=0) for r in crawl()]
    parts[2] = parts[2][: len(parts[2]) // 2]
    data = b"".join(parts)
    got = list(warc.iter_records(data))
    assert [r.error or r.kind for r in got] == [
        "warcinfo",
        "request",
        "gzip_corrupt",
        "metadata",
        "revisit",
        "response",
    ]
    assert got[2].offset == len(parts[0]) + len(parts[1])
    check_spans(data)


def test_file_cut_inside_the_last_record():
    parts = [gzip.compress(r, mtime=0) for r in crawl()]
    assert outcomes(b"".join(parts)[:-40])[-1] == "gzip_truncated"
    plain = b"".join(crawl())
    assert outcomes(plain[:-40])[-1] == "record_truncated"
    assert outcomes(plain[:-40])[:-1] == [r.kind for r in warc.iter_records(plain)][:-1]


def test_garbage_between_records_and_garbage_only():
    records = [gzip.compress(r, mtime=0) for r in crawl()]
    junk = bytes(range(256)) * 4
    data = b"".join(records[:3]) + junk + b"".join(records[3:])
    got = list(warc.iter_records(data))
    assert [r.error or r.kind for r in got][3] == "not_gzip"
    assert got[3].length == len(junk)
    assert outcomes(b"".join(crawl()[:2]) + junk + b"".join(crawl()[2:]))[2] == (
        "not_a_warc_record"
    )
    assert outcomes(junk) == ["not_a_warc_record"]
    assert outcomes(b"") == []


def test_block_digest_catches_a_changed_byte():
    record = bytearray(response(URI, b"<p>" + b"x" * 100 + b"</p>"))
    record[-20] ^= 0x01
    assert outcomes(members([bytes(record)])) == ["block_digest_mismatch"]
    assert [r.kind for r in warc.iter_records(members([bytes(record)]), verify_digests=False)] == [
        "response"
    ]


def test_100_mb_gzip_payload_is_counted_in_bounded_memory():
    size = 100 << 20
    data = huge_member("https://a.example/huge", size) + members(crawl()[:2])
    assert len(data) < 1 << 20  # the test file itself is small
    tracemalloc.start()
    got = [r.error or r.kind for r in warc.iter_records(data, max_record_bytes=1 << 20)]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert got == ["record_too_large", "warcinfo", "request"]
    assert peak < 12 << 20  # 1 MiB kept at most, plus a few inflate pieces


def test_100_mb_plain_payload_is_skipped_in_bounded_memory():
    size = 100 << 20
    stream = LazyWarc(warcinfo(), size, request(URI))
    tracemalloc.start()
    got = [r.error or r.kind for r in warc.iter_records(stream)]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert got == ["warcinfo", "record_too_large", "request"]
    assert peak < 8 << 20


def test_multi_record_member_and_stream_input():
    data = gzip.compress(b"".join(crawl()[:3]), mtime=0)  # one member, three records
    assert outcomes(io.BytesIO(data)) == ["warcinfo", "request", "response"]
