"""The flags of web input (WARC/WET), and the `WebConfig` they make."""

from __future__ import annotations

from beam_jobs.runtime.flags import BoolFlag
from beam_jobs.web.extract import ExtractConfig
from beam_jobs.web.langid import LangConfig, parse_langs
from beam_jobs.web.page import WebConfig

_E, _L = ExtractConfig(), LangConfig()


def add_web_args(parser) -> None:
    g = parser.add_argument_group("web input (.warc, .warc.gz, .wet, .wet.gz; docs/web.md)")
    g.add_argument(
        "--lang",
        default="",
        help="languages to keep, as comma-separated codes (ja, ja,en); empty or "
        "any: every language (the detected one is a shard column either way)",
    )
    g.add_argument(
        "--min-lang-score",
        type=float,
        default=_L.min_score,
        help="minimum language-ID score (0-1) of a kept page",
    )
    g.add_argument(
        "--extract-main-content",
        action=BoolFlag,
        default=_E.main_content,
        help="keep the page's main content, not its menus and footers",
    )
    g.add_argument(
        "--extract-timeout",
        type=float,
        default=_E.timeout_s,
        help="seconds one page may take to extract before it is given up (extract_timeout)",
    )
    g.add_argument(
        "--max-html-chars",
        type=int,
        default=_E.max_html_chars,
        help="pages with more HTML than this are not parsed (html_too_large)",
    )
    g.add_argument(
        "--verify-digests",
        action=BoolFlag,
        default=True,
        help="check each record's WARC-Block-Digest",
    )


def web_config(opts, max_record_bytes: int) -> WebConfig:
    """The web settings of parsed flags; ValueError (one line) for a value that cannot work."""
    if not 0 <= opts.min_lang_score <= 1:
        raise ValueError(f"--min-lang-score must be in [0, 1], got {opts.min_lang_score}")
    if not opts.extract_timeout > 0:
        raise ValueError(f"--extract-timeout must be positive, got {opts.extract_timeout}")
    if opts.max_html_chars < 1:
        raise ValueError("--max-html-chars must be at least 1")
    return WebConfig(
        extract=ExtractConfig(opts.extract_main_content, opts.max_html_chars, opts.extract_timeout),
        lang=LangConfig(parse_langs(opts.lang), opts.min_lang_score),
        max_record_bytes=max_record_bytes,
        verify_digests=opts.verify_digests,
    )
