"""The pipeline's flags, as a `PipelineOptions` subclass so that runner flags (`--runner`,
`--direct_num_workers`, Dataflow/Flink/Spark options) pass straight through."""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from beam_jobs.dedup.near.config import add_near_dedup_args
from beam_jobs.runtime.flags import BoolFlag
from beam_jobs.text.filters import FilterConfig
from beam_jobs.text.normalize import WHITESPACE_MODES
from beam_jobs.tokens.tokenizers import TOKENIZERS

_F = FilterConfig()


class PrepareOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        io = parser.add_argument_group("input and output")
        io.add_argument("--input", action="append", dest="input",
                        help="file path or glob (.txt, .jsonl, .parquet, optionally .gz); "
                             "repeat for several; any Beam filesystem (gs://, s3://)")
        io.add_argument("--output", help="output directory (local or gs:// ...)")
        io.add_argument("--format", default="auto", choices=("auto", "text", "jsonl", "parquet"),
                        help="input format; auto decides by file extension")
        io.add_argument("--text-field", default="text", help="text field (JSON Lines, Parquet)")
        io.add_argument("--id-field", default="id",
                        help="id field; records without one get RELPATH:LINE")
        io.add_argument("--source-field", default="source",
                        help="provenance field copied to the shards")
        io.add_argument("--max-record-bytes", type=int, default=16 << 20,
                        help="records larger than this are rejected (too_large)")
        io.add_argument("--read-block-mb", type=float, default=4,
                        help="files are cut into blocks of about this many MB of whole lines "
                             "that workers parse in parallel (a large file spreads over them)")
        io.add_argument("--decode-errors", default="strict", choices=("strict", "replace"),
                        help="invalid UTF-8: reject the record (strict) or keep it with "
                             "U+FFFD in place of the bad bytes (replace)")

        norm = parser.add_argument_group("normalization (training text; the dedup key always "
                                         "uses NFKC + seed rules)")
        norm.add_argument("--unicode-form", default="NFKC", choices=("NFKC", "NFC", "none"))
        norm.add_argument("--lowercase", action=BoolFlag, default=False)
        norm.add_argument("--punct-to-space", action=BoolFlag, default=False,
                          help="replace the seed punctuation set 。､，,.!?！？ by spaces")
        norm.add_argument("--whitespace", default="lines", choices=WHITESPACE_MODES)

        filt = parser.add_argument_group("quality filters (0 disables; 1 for the max fractions)")
        filt.add_argument("--min-chars", type=int, default=_F.min_chars)
        filt.add_argument("--max-chars", type=int, default=_F.max_chars)
        filt.add_argument("--scripts", default="ja",
                          help="expected scripts: comma list of hiragana, katakana, han, latin, "
                               "hangul, cyrillic, other, or groups ja, any")
        filt.add_argument("--min-script-ratio", type=float, default=_F.min_script_ratio,
                          help="minimum share of letters in the expected scripts")
        filt.add_argument("--min-letter-ratio", type=float, default=_F.min_letter_ratio,
                          help="minimum share of letters among non-space characters")
        filt.add_argument("--max-duplicate-line-fraction", type=float,
                          default=_F.max_duplicate_line_fraction, help="1 disables")
        filt.add_argument("--max-duplicate-ngram-fraction", type=float,
                          default=_F.max_duplicate_ngram_fraction, help="1 disables")
        filt.add_argument("--duplicate-ngram-size", type=int, default=_F.ngram_size)

        tok = parser.add_argument_group("tokens, vocabulary and n-grams")
        tok.add_argument("--tokenizer", default="char", choices=sorted(TOKENIZERS))
        tok.add_argument("--min-count", type=int, default=1,
                         help="tokens seen fewer times in train become <unk>")
        tok.add_argument("--max-vocab", type=int, default=0,
                         help="keep at most this many tokens, specials included (0: no cap)")
        tok.add_argument("--ngram-order", type=int, default=3)
        tok.add_argument("--ngram-shards", type=int, default=4)

        out = parser.add_argument_group("split and shards")
        out.add_argument("--val-fraction", type=float, default=0.05)
        out.add_argument("--split-seed", default="0",
                         help="salt of the id hash that assigns splits")
        out.add_argument("--num-shards", type=int, default=4, help="shards per split")
        out.add_argument("--row-group-size", type=int, default=1024,
                         help="rows per Parquet row group")
        out.add_argument("--report", action=BoolFlag, default=True, help="draw PNG plots")
        out.add_argument("--overwrite", action="store_true",
                         help="replace a complete run in --output")
        out.add_argument("--resume", action="store_true",
                         help="reuse the materialized dedup stage of an earlier run in --output "
                              "when its options and input files are the same")

        add_near_dedup_args(parser)


def validate(opts: PrepareOptions) -> None:
    """Raise ValueError with a one-line message for any flag that cannot work."""
    if not opts.input:
        raise ValueError("--input is required (a path or glob; repeat for several)")
    if not opts.output:
        raise ValueError("--output is required")
    if not 0 <= opts.val_fraction < 1:
        raise ValueError(f"--val-fraction must be in [0, 1), got {opts.val_fraction}")
    for flag in ("num_shards", "ngram_shards", "ngram_order", "row_group_size"):
        if getattr(opts, flag) < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be at least 1")
    for flag in ("min_count", "max_vocab", "min_chars", "max_chars", "max_record_bytes"):
        if getattr(opts, flag) < 0:
            raise ValueError(f"--{flag.replace('_', '-')} must not be negative")
    for flag in ("min_script_ratio", "min_letter_ratio", "max_duplicate_line_fraction",
                 "max_duplicate_ngram_fraction"):
        if not 0 <= getattr(opts, flag) <= 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be in [0, 1]")
    if not opts.read_block_mb > 0:
        raise ValueError(f"--read-block-mb must be positive, got {opts.read_block_mb}")
    if opts.max_vocab and opts.max_vocab <= 3:
        raise ValueError("--max-vocab must leave room beyond the 3 special tokens")
