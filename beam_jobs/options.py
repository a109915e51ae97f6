"""The pipeline's flags, as a `PipelineOptions` subclass so that runner flags (`--runner`,
`--direct_num_workers`, Dataflow/Flink/Spark options) pass straight through.

Beam only warns about a flag it does not know and drops it; here anything that is neither our
flag nor one of Beam's is refused before any work (`check_flags`), with the closest known flag
as a suggestion, so a typo never silently runs with a default.
"""

from __future__ import annotations

import argparse
import codecs
import difflib

from apache_beam.options.pipeline_options import PipelineOptions

from beam_jobs.counts.ngram_config import add_ngram_args
from beam_jobs.dedup.near.config import add_near_dedup_args
from beam_jobs.overlap.config import add_overlap_args
from beam_jobs.runtime.flags import BoolFlag
from beam_jobs.text.filters import FilterConfig
from beam_jobs.text.normalize import WHITESPACE_MODES
from beam_jobs.text.options import add_quality_args
from beam_jobs.text.perplexity_filter import add_perplexity_args
from beam_jobs.tokens.options import add_token_args
from beam_jobs.tokens.tokenizers import TOKENIZERS
from beam_jobs.web.options import add_web_args

_F = FilterConfig()


def _add_text_and_split_args(parser) -> None:
    """Normalization, quality filters, tokens and the split: the groups of `PrepareOptions`."""
    norm = parser.add_argument_group(
        "normalization (training text; the dedup key always uses NFKC + seed rules)"
    )
    norm.add_argument("--unicode-form", default="NFKC", choices=("NFKC", "NFC", "none"))
    norm.add_argument("--lowercase", action=BoolFlag, default=False)
    norm.add_argument(
        "--punct-to-space",
        action=BoolFlag,
        default=False,
        help="replace the seed punctuation set 。､，,.!?！？ by spaces",
    )
    norm.add_argument("--whitespace", default="lines", choices=WHITESPACE_MODES)

    filt = parser.add_argument_group("quality filters (0 disables; 1 for the max fractions)")
    filt.add_argument("--min-chars", type=int, default=_F.min_chars)
    filt.add_argument("--max-chars", type=int, default=_F.max_chars)
    filt.add_argument(
        "--scripts",
        default="ja",
        help="expected scripts: comma list of hiragana, katakana, han, latin, "
        "hangul, cyrillic, other, or groups ja, any",
    )
    filt.add_argument(
        "--min-script-ratio",
        type=float,
        default=_F.min_script_ratio,
        help="minimum share of letters in the expected scripts",
    )
    filt.add_argument(
        "--min-letter-ratio",
        type=float,
        default=_F.min_letter_ratio,
        help="minimum share of letters among non-space characters",
    )
    filt.add_argument(
        "--max-duplicate-line-fraction",
        type=float,
        default=_F.max_duplicate_line_fraction,
        help="1 disables",
    )
    filt.add_argument(
        "--max-duplicate-ngram-fraction",
        type=float,
        default=_F.max_duplicate_ngram_fraction,
        help="1 disables",
    )
    filt.add_argument("--duplicate-ngram-size", type=int, default=_F.ngram_size)
    filt.add_argument(
        "--max-replacement-fraction",
        type=float,
        default=_F.max_replacement_fraction,
        help="share of U+FFFD (mojibake, --decode-errors replace); 1 disables",
    )

    tok = parser.add_argument_group("tokens, vocabulary and n-grams")
    tok.add_argument("--tokenizer", default="char", choices=sorted(TOKENIZERS))
    tok.add_argument(
        "--min-count", type=int, default=1, help="tokens seen fewer times in train become <unk>"
    )
    tok.add_argument(
        "--max-vocab",
        type=int,
        default=0,
        help="keep at most this many tokens, specials included (0: no cap)",
    )
    tok.add_argument("--ngram-order", type=int, default=3)
    tok.add_argument("--ngram-shards", type=int, default=4)

    out = parser.add_argument_group("split and shards")
    out.add_argument("--val-fraction", type=float, default=0.05)
    out.add_argument("--split-seed", default="0", help="salt of the id hash that assigns splits")
    out.add_argument("--num-shards", type=int, default=4, help="shards per split")
    out.add_argument("--row-group-size", type=int, default=1024, help="rows per Parquet row group")
    out.add_argument("--report", action=BoolFlag, default=True, help="draw PNG plots")
    out.add_argument("--overwrite", action="store_true", help="replace a complete run in --output")
    out.add_argument(
        "--allow-unknown-flags",
        action="store_true",
        help="pass flags that Beam's Python SDK does not know on to the runner "
        "(Java-only options of a Flink or Spark job server); without it "
        "they are refused",
    )
    out.add_argument(
        "--resume",
        action="store_true",
        help="reuse the materialized dedup stage of an earlier run in --output "
        "when its options and input files are the same",
    )


class PrepareOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        io = parser.add_argument_group("input and output")
        io.add_argument(
            "--input",
            action="extend",
            nargs="+",
            dest="input",
            metavar="PATH",
            help="file paths or globs (.txt, .jsonl, .parquet, optionally .gz); "
            "several after one --input, or --input repeated; any Beam "
            "filesystem (gs://, s3://)",
        )
        io.add_argument("--output", help="output directory (local or gs:// ...)")
        io.add_argument(
            "--format",
            default="auto",
            choices=("auto", "text", "jsonl", "parquet", "warc", "wet"),
            help="input format; auto decides by file extension",
        )
        io.add_argument("--text-field", default="text", help="text field (JSON Lines, Parquet)")
        io.add_argument(
            "--id-field", default="id", help="id field; records without one get RELPATH:LINE"
        )
        io.add_argument(
            "--source-field", default="source", help="provenance field copied to the shards"
        )
        io.add_argument(
            "--max-record-bytes",
            type=int,
            default=16 << 20,
            help="records larger than this are rejected (too_large)",
        )
        io.add_argument(
            "--read-block-mb",
            type=float,
            default=4,
            help="files are cut into blocks of about this many MB of whole lines "
            "that workers parse in parallel (a large file spreads over them)",
        )
        io.add_argument(
            "--encoding",
            default="utf-8",
            help="encoding of text and JSON Lines input: utf-8, a Python codec "
            "name (cp932, euc-jp, utf-16, ...), or auto (a UTF-16/32 "
            "byte-order mark, else UTF-8)",
        )
        io.add_argument(
            "--decode-errors",
            default="strict",
            choices=("strict", "replace"),
            help="invalid UTF-8: reject the record (strict) or keep it with "
            "U+FFFD in place of the bad bytes (replace)",
        )

        _add_text_and_split_args(parser)

        add_quality_args(parser)
        add_web_args(parser)
        add_ngram_args(parser)
        add_perplexity_args(parser)
        add_near_dedup_args(parser)
        add_overlap_args(parser)
        add_token_args(parser)


class _StrictParser(argparse.ArgumentParser):
    """argparse that raises a one-line ValueError instead of printing usage and exiting."""

    def error(self, message):
        raise ValueError(message)


def all_flags_parser() -> argparse.ArgumentParser:
    """Our flags and every flag of Beam's options classes (runners, filesystems, workers),
    as Beam itself collects them."""
    parser = _StrictParser(allow_abbrev=False, add_help=False)
    classes = {str(cls): cls for cls in PipelineOptions.__subclasses__()}
    for cls in classes.values():
        cls._add_argparse_args(parser)
    return parser


def help_text() -> str:
    parser = argparse.ArgumentParser(
        prog="python -m beam_jobs.prepare",
        allow_abbrev=False,
        description="Raw documents to clean, deduplicated, split Parquet shards, with a "
        "vocabulary, n-gram counts, statistics and a manifest (docs/output_format.md).",
        epilog="Runner flags (--runner, --direct_num_workers, --direct_running_mode, Dataflow, "
        "Flink, Spark and Prism options) are Beam's own; see docs/cluster.md.",
    )
    PrepareOptions._add_argparse_args(parser)
    return parser.format_help()


def check_flags(argv: list[str]) -> None:
    """Raise ValueError (one line) for an argument that is not a known flag or its value: a
    typo, or a path the shell expanded from an unquoted glob that is not after --input."""
    parser = all_flags_parser()
    known_args, unknown = parser.parse_known_args(argv)
    if not unknown or known_args.allow_unknown_flags:
        return
    known = [s for action in parser._actions for s in action.option_strings]
    arg = unknown[0]
    if arg.startswith("-"):
        name = arg.split("=", 1)[0]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else "; see --help"
        raise ValueError(f"unknown flag {name}{hint}")
    raise ValueError(
        f"unexpected argument {arg!r}: give input paths after --input (quote a "
        "glob so that the shell does not expand it)"
    )


def validate(opts: PrepareOptions) -> None:
    """Raise ValueError with a one-line message for any flag that cannot work."""
    if not opts.input:
        raise ValueError("--input is required (a path or glob; repeat for several)")
    if not opts.output:
        raise ValueError("--output is required")
    if not 0 <= opts.val_fraction < 1:
        raise ValueError(f"--val-fraction must be in [0, 1), got {opts.val_fraction}")
    for flag in (
        "num_shards",
        "ngram_shards",
        "ngram_order",
        "row_group_size",
        "max_record_bytes",
        "duplicate_ngram_size",
    ):
        if getattr(opts, flag) < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be at least 1")
    for flag in ("min_count", "max_vocab", "min_chars", "max_chars"):
        if getattr(opts, flag) < 0:
            raise ValueError(f"--{flag.replace('_', '-')} must not be negative")
    for flag in (
        "min_script_ratio",
        "min_letter_ratio",
        "max_duplicate_line_fraction",
        "max_duplicate_ngram_fraction",
        "max_replacement_fraction",
    ):
        if not 0 <= getattr(opts, flag) <= 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be in [0, 1]")
    if opts.max_chars and opts.min_chars > opts.max_chars:
        raise ValueError(
            f"--min-chars {opts.min_chars} is above --max-chars {opts.max_chars}: "
            "every document would be filtered"
        )
    for flag in ("text_field", "id_field", "source_field"):
        if not getattr(opts, flag).strip():
            raise ValueError(f"--{flag.replace('_', '-')} must name a field")
    if opts.encoding != "auto":
        try:
            codecs.lookup(opts.encoding)
        except LookupError:
            raise ValueError(f"--encoding {opts.encoding!r}: unknown encoding") from None
    if not opts.read_block_mb > 0:
        raise ValueError(f"--read-block-mb must be positive, got {opts.read_block_mb}")
    if opts.max_vocab and opts.max_vocab <= 3:
        raise ValueError("--max-vocab must leave room beyond the 3 special tokens")
