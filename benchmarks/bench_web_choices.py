"""How the web libraries were chosen: WARC readers, charset detection, HTML to text and
language identification, measured on the labelled development crawl
(`../shared/corpora/warc/`, labels in `labels.jsonl.gz`). The tables go to docs/web.md.

    python -m benchmarks.bench_web_choices [--section warc|charset|extract|langid|all]

Every candidate runs on the same records in one process, one after the other; times are
medians of `--repeats` runs, on one core.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

from benchmarks.web_cases import damaged_cases, fold_cp932, load_crawl

WARC_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "corpora" / "warc"


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def table(header: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


# --- WARC reading -------------------------------------------------------------------------


def _fastwarc_read(data: bytes) -> int:
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    n = 0
    for record in ArchiveIterator(io.BytesIO(data), record_types=WarcRecordType.any_type):
        record.reader.read()
        n += 1
    return n


def _warcio_read(data: bytes) -> int:
    from warcio.archiveiterator import ArchiveIterator

    n = 0
    for record in ArchiveIterator(io.BytesIO(data)):
        record.content_stream().read()
        n += 1
    return n


def _ours_read(data: bytes) -> int:
    from beam_jobs.web import warc

    return sum(1 for _ in warc.iter_records(data))


def _outcome(fn, data: bytes) -> str:
    try:
        return f"{fn(data)} records, no error"
    except Exception as exc:  # what each library says about damage is the measurement
        said = "".join(c if c.isprintable() and c.isascii() else "?" for c in str(exc))
        return f"raises {type(exc).__name__}: {said[:48]}"


def _ours_outcome(data: bytes) -> str:
    from beam_jobs.web import warc

    kinds: dict[str, int] = {}
    for rec in warc.iter_records(data):
        key = rec.error or rec.kind
        kinds[key] = kinds.get(key, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))


def section_warc(repeats: int) -> str:
    files = sorted(WARC_DIR.glob("*.warc.gz"))
    blobs = [f.read_bytes() for f in files]
    size = sum(map(len, blobs)) / 1e6
    rows = []
    for name, fn in (
        ("fastwarc", _fastwarc_read),
        ("warcio", _warcio_read),
        ("beam_jobs.web.warc (fastwarc per member)", _ours_read),
    ):
        count = sum(fn(b) for b in blobs)
        secs = median_time(lambda fn=fn: [fn(b) for b in blobs], repeats)
        rows.append([name, count, f"{count / secs:,.0f}", f"{size / secs:.1f}"])
    speed = table(["reader", "records", "records/s", "MB/s (gzip)"], rows)
    cases = damaged_cases(blobs[0])
    damage = [
        [case, _outcome(_fastwarc_read, data), _outcome(_warcio_read, data), _ours_outcome(data)]
        for case, data in cases.items()
    ]
    return (
        f"### WARC reading ({len(files)} files, {size:.1f} MB)\n\n{speed}\n\n"
        "Damage (a 6-record slice of file 0, one record damaged):\n\n"
        + table(["case", "fastwarc", "warcio", "ours"], damage)
    )


# --- charsets -------------------------------------------------------------------------------


def _normalizer_sniff(payload: bytes):
    from charset_normalizer import from_bytes

    from beam_jobs.web.charset import SNIFF_BYTES, codec_for

    best = from_bytes(payload[:SNIFF_BYTES]).best()
    return codec_for(best.encoding) if best else None


def _browser_order(payload: bytes, http_charset):
    """What a browser does: BOM, HTTP, <meta> in the first 1024 bytes, then uchardet."""
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    from beam_jobs.web.charset import codec_for, meta_charset

    codec = (
        codec_for(http_charset)
        or codec_for(meta_charset(payload[:1024]))
        or codec_for(detect_encoding(payload))
    )
    return bytes_to_str(payload, codec or "utf-8", errors="replace")


def _resiliparse_auto(payload: bytes, http_charset):
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    return bytes_to_str(payload, detect_encoding(payload, from_html_meta=True), errors="replace")


def _normalizer_alone(payload: bytes, http_charset):
    from charset_normalizer import from_bytes

    best = from_bytes(payload).best()
    return str(best) if best else payload.decode("utf-8", "replace")


def section_charset(repeats: int) -> str:
    from beam_jobs.web.charset import decode_html, sniff

    pages = [
        r
        for r in load_crawl(WARC_DIR)
        if r["label"]["kind"] in ("html", "truncated", "duplicate") and r["label"]["charset"]
    ]
    truth = []
    for r in pages:
        body = r["payload"].removeprefix(b"\xef\xbb\xbf")
        truth.append(fold_cp932(body.decode(r["label"]["charset"], errors="strict")))
    candidates = {
        "chosen: precedence + uchardet (resiliparse)": lambda p, h: decode_html(p, h).text,
        "precedence + uchardet, then charset-normalizer": lambda p, h: (
            decode_html(p, h, sniffers=(sniff, _normalizer_sniff)).text
        ),
        "precedence + charset-normalizer only": lambda p, h: (
            decode_html(p, h, sniffers=(_normalizer_sniff,)).text
        ),
        "browser order (HTTP > meta in 1024 B > uchardet)": _browser_order,
        "resiliparse detect_encoding(from_html_meta) alone": _resiliparse_auto,
        "charset-normalizer alone": _normalizer_alone,
    }
    rows = []
    for name, fn in candidates.items():
        outs = [fn(r["payload"], r["http_charset"]) for r in pages]
        right = sum(fold_cp932(o) == t for o, t in zip(outs, truth))
        fffd = sum("\ufffd" in o and "\ufffd" not in t for o, t in zip(outs, truth))
        secs = median_time(
            lambda fn=fn: [fn(r["payload"], r["http_charset"]) for r in pages], repeats
        )
        rows.append([name, f"{right}/{len(pages)}", fffd, f"{secs / len(pages) * 1e6:.0f}"])
    reasons: dict[str, int] = {}
    for r in pages:
        key = decode_html(r["payload"], r["http_charset"]).reason
        reasons[key] = reasons.get(key, 0) + 1
    return (
        f"### Charset ({len(pages)} HTML pages with a labelled charset)\n\n"
        + table(["method", "text exactly right", "pages with U+FFFD", "µs/page"], rows)
        + "\n\nDecisions of the chosen precedence: "
        + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items()))
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--section", default="all", choices=["warc", "charset", "extract", "langid", "all"]
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="also write the markdown here")
    args = parser.parse_args(argv)
    from benchmarks import bench_web_quality

    sections = {
        "warc": section_warc,
        "charset": section_charset,
        "extract": bench_web_quality.section_extract,
        "langid": bench_web_quality.section_langid,
    }
    names = list(sections) if args.section == "all" else [args.section]
    parts = [sections[n](args.repeats) for n in names]
    text = "\n\n".join(parts)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
