"""Shared inputs of the web benchmarks: the labelled development crawl, damaged copies of a
slice of it, and the reference texts of the help pages."""

from __future__ import annotations

import gzip
import io
import json
import re
from pathlib import Path

# Python's cp932 decoder and WHATWG's Shift_JIS decoder differ on six characters; both are
# right (see the crawl's README), so texts are compared after folding them.
_CP932_FOLD = str.maketrans(
    {
        "\uff5e": "\u301c",
        "\uff0d": "\u2212",
        "\u2225": "\u2016",
        "\uffe0": "\u00a2",
        "\uffe1": "\u00a3",
        "\uffe2": "\u00ac",
    }
)


def fold_cp932(text: str) -> str:
    return text.translate(_CP932_FOLD)


def load_crawl(warc_dir: Path) -> list[dict]:
    """Every response record of the crawl with its label: {label, payload, http_charset,
    content_type, status, uri, file}. Labels are in the files' record order."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    labels = [json.loads(line) for line in gzip.open(warc_dir / "labels.jsonl.gz")]
    out = []
    for path in sorted(warc_dir.glob("*.warc.gz")):
        for rec in ArchiveIterator(open(path, "rb"), record_types=WarcRecordType.response):
            out.append(
                {
                    "payload": rec.reader.read(),
                    "http_charset": rec.http_charset,
                    "content_type": rec.http_content_type,
                    "status": rec.http_headers.status_code,
                    "uri": rec.headers.get("WARC-Target-URI"),
                    "file": path.name,
                }
            )
    assert len(out) == len(labels), (len(out), len(labels))
    for rec, label in zip(out, labels):
        assert rec["uri"] == label["uri"]
        rec["label"] = label
    return out


def members(data: bytes) -> list[bytes]:
    """The gzip members of a .warc.gz, by FastWARC's compressed stream positions."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    starts = [
        r.stream_pos
        for r in ArchiveIterator(
            io.BytesIO(data), parse_http=False, record_types=WarcRecordType.any_type
        )
    ]
    return [data[a:b] for a, b in zip(starts, starts[1:] + [len(data)])]


def _lie(record: bytes, delta: int) -> bytes:
    head, sep, body = record.partition(b"\r\n\r\n")
    head = re.sub(
        rb"(?im)^(Content-Length:) *(\d+)",
        lambda m: m.group(1) + b" %d" % (int(m.group(2)) + delta),
        head,
    )
    return head + sep + body


def damaged_cases(data: bytes) -> dict[str, bytes]:
    """Six records of a real file, whole and with one record damaged in each way."""
    parts = members(data)[:6]
    plain = [gzip.decompress(m) for m in parts]
    cut = parts[2][: len(parts[2]) // 2]
    return {
        "intact (gzip)": b"".join(parts),
        "gzip member cut in half": b"".join(parts[:2]) + cut + b"".join(parts[3:]),
        "file cut inside the last member": b"".join(parts[:5]) + parts[5][:200],
        "garbage between members": b"".join(parts[:3])
        + bytes(range(256)) * 4
        + b"".join(parts[3:]),
        "Content-Length +500 (gzip)": b"".join(parts[:2])
        + gzip.compress(_lie(plain[2], 500))
        + b"".join(parts[3:]),
        "Content-Length -500 (gzip)": b"".join(parts[:2])
        + gzip.compress(_lie(plain[2], -500))
        + b"".join(parts[3:]),
        "Content-Length +500 (plain)": b"".join(plain[:2])
        + _lie(plain[2], 500)
        + b"".join(plain[3:]),
        "Content-Length -500 (plain)": b"".join(plain[:2])
        + _lie(plain[2], -500)
        + b"".join(plain[3:]),
        "garbage only": bytes(range(256)) * 40,
    }


def references(ja_dir: Path) -> dict[str, str]:
    """Package path ('usr/share/...') → reference text, from the shared text corpora whose
    `source` names the package file the page came from."""
    out = {}
    for name in ("ja_libreoffice_help.jsonl.gz", "ja_gimp_help.jsonl.gz"):
        for line in gzip.open(ja_dir / name):
            rec = json.loads(line)
            match = re.search(r", /(usr/share/[^;]+?\.html?)(;|$)", rec["source"])
            if match:
                out[match.group(1)] = rec["text"]
    return out
