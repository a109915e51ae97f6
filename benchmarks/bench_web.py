"""Read → charset → HTML to text → language ID, per core: inside the pipeline (ReadDocuments
on the FnApiRunner, in-process, one worker) against the same libraries called in a bare loop
over the same files (FastWARC, Resiliparse's charset detection and extract_plain_text,
pycld2), side by side in one run, alternating, median of `--repeats`.

    python -m benchmarks.bench_web [--input GLOB] [--repeats 3] [--copies 2]

`--copies` copies the input files that many times into a temporary folder (more work per run,
so the pipeline's fixed start-up cost weighs less); that cost is measured apart, on a
one-record file, and reported.

The pipeline does more than the loop: framing that survives damage, block digests, binary
sniffing, the charset precedence, the extractor in a killable child process, counters and
audit rows for every record. Wall time includes the pipeline's start (a few seconds).
"""

from __future__ import annotations

import argparse
import glob
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

DEFAULT_INPUT = str(
    Path(__file__).resolve().parents[1].parent / "shared" / "corpora" / "warc" / "*.warc.gz"
)


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def bare_loop(paths: list[str]) -> int:
    """The libraries alone: every 200 HTML response decoded, extracted, identified (the
    pipeline also replaces control characters, which CLD2 refuses, before identifying)."""
    import pycld2
    from fastwarc.warc import ArchiveIterator, WarcRecordType
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding, map_encoding_to_html5

    pages = 0
    for path in paths:
        with open(path, "rb") as handle:
            for rec in ArchiveIterator(handle, record_types=WarcRecordType.response):
                ctype = (rec.http_content_type or "").lower()
                if rec.http_headers.status_code != 200 or ctype not in (
                    "text/html",
                    "application/xhtml+xml",
                ):
                    continue
                body = rec.reader.read()
                label = rec.http_charset
                codec = map_encoding_to_html5(label) if label else detect_encoding(body)
                html = bytes_to_str(body, codec)
                text = extract_plain_text(html, main_content=True, preserve_formatting=True)
                try:
                    pycld2.detect(text[:20_000], bestEffort=True)
                except pycld2.error:
                    pass
                pages += 1
    return pages


def pipeline_run(pattern: str, in_process: bool = False) -> int:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from beam_jobs.io.read import ReadConfig, ReadDocuments
    from beam_jobs.web.extract import ExtractConfig
    from beam_jobs.web.page import WebConfig

    options = PipelineOptions(["--runner", "FnApiRunner", "--direct_num_workers", "1"])
    with beam.Pipeline(options=options) as p:
        web = WebConfig(extract=ExtractConfig(timeout_s=0)) if in_process else None
        web = web or WebConfig()
        read = p | ReadDocuments(ReadConfig((pattern,)), web=web)
        for name in ("docs", "filtered", "skipped", "rejected"):
            _ = read[name] | f"Drop{name}" >> beam.Filter(lambda _: False)
    return 0


def timed(fn, *args) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    fn(*args)
    return time.perf_counter() - wall, cpu_seconds() - cpu


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=DEFAULT_INPUT)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--copies", type=int, default=2)
    args = parser.parse_args(argv)
    found = sorted(glob.glob(args.input))
    if not found:
        parser.error(f"--input {args.input!r} matches no file")
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for copy in range(args.copies):
            for path in found:
                paths.append(f"{tmp}/{copy}-{Path(path).name}")
                shutil.copyfile(path, paths[-1])
        tiny = f"{tmp}/tiny/one.warc"
        Path(tiny).parent.mkdir()
        Path(tiny).write_bytes(_one_record())
        compare(paths, f"{tmp}/*.warc.gz", tiny, args.repeats)


def _one_record() -> bytes:
    block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<p>one page</p>"
    return (
        b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:1>\r\n"
        b"Content-Length: %d\r\n\r\n" % len(block) + block + b"\r\n\r\n"
    )


def compare(paths: list[str], pattern: str, tiny: str, repeats: int) -> None:
    mb = sum(Path(p).stat().st_size for p in paths) / 1e6
    pages = bare_loop(paths[:1]) and bare_loop(paths)  # the first call warms caches
    pipeline_run(tiny)
    runs = {
        "bare loop": [],
        "pipeline": [],
        "pipeline, one-record file": [],
        "pipeline, extractor in-process (no hard time bound)": [],
    }
    for _ in range(repeats):
        runs["bare loop"].append(timed(bare_loop, paths))
        runs["pipeline"].append(timed(pipeline_run, pattern))
        runs["pipeline, one-record file"].append(timed(pipeline_run, tiny))
        runs["pipeline, extractor in-process (no hard time bound)"].append(
            timed(pipeline_run, pattern, True)
        )
    print(f"{len(paths)} files, {mb:.1f} MB (gzip), {pages} HTML pages; median of {repeats}\n")
    print("| path | wall s | CPU s | pages/s (wall) | MB/s (wall) | pages per CPU-s |")
    print("|---|---|---|---|---|---|")
    medians = {}
    for name, times in runs.items():
        wall = statistics.median(t[0] for t in times)
        cpu = statistics.median(t[1] for t in times)
        medians[name] = (wall, cpu)
        print(
            f"| {name} | {wall:.2f} | {cpu:.2f} | {pages / wall:.0f} | {mb / wall:.2f} | "
            f"{pages / cpu:.0f} |"
        )
    (bw, bc), (pw, pc) = medians["bare loop"], medians["pipeline"]
    fw, fc = medians["pipeline, one-record file"]
    print(
        f"\npipeline / bare loop: {bw / pw:.2f} by wall time, {bc / pc:.2f} by CPU time; "
        f"without the fixed cost of a run (the one-record file): {bw / (pw - fw):.2f} by wall "
        f"time, {bc / (pc - fc):.2f} by CPU time"
    )
    iw, ic = medians["pipeline, extractor in-process (no hard time bound)"]
    print(f"with the extractor in-process: {bw / iw:.2f} by wall time, {bc / ic:.2f} by CPU time")


if __name__ == "__main__":
    main()
