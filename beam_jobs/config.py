"""One configuration object for a run, built once from the parsed flags: each stage takes its
part (`config.read`, `config.near`, ...), and the manifest and the stage key record it."""

from __future__ import annotations

import argparse
import dataclasses

from apache_beam.io.filesystems import FileSystems

from beam_jobs.counts.ngram_config import NgramConfig
from beam_jobs.dedup.near.config import NearDedupConfig
from beam_jobs.io.files import WARC_FORMATS, detect_format
from beam_jobs.io.read import ReadConfig
from beam_jobs.options import PrepareOptions
from beam_jobs.overlap.config import DecontaminateConfig, OverlapConfig
from beam_jobs.text.filters import FilterConfig, resolve_scripts
from beam_jobs.text.normalize import NormalizeConfig
from beam_jobs.text.options import QualityConfig, quality_config
from beam_jobs.text.perplexity_filter import PerplexityConfig, perplexity_config
from beam_jobs.tokens.options import TokenConfig, token_config
from beam_jobs.tokens.tokenizers import SPECIAL_TOKENS
from beam_jobs.web.options import web_config
from beam_jobs.web.page import WebConfig

DEDUP_KEY = "NFKC, lower-case, seed punctuation to space, whitespace folded"
SPLIT_RULE = "blake2b-64(id, person='split'+seed) < val_fraction * 2**64"
COMPONENT_SPLIT_RULE = (
    "the rule for the smallest id of the document's containment component; "
    "a component above max_val_component goes to train (docs/leakage.md)"
)


@dataclasses.dataclass(frozen=True)
class SplitConfig:
    val_fraction: float = 0.05
    seed: str = "0"


@dataclasses.dataclass(frozen=True)
class CountsConfig:
    min_count: int = 1
    max_vocab: int = 0
    ngram_order: int = 3
    ngram_shards: int = 4


@dataclasses.dataclass(frozen=True)
class OutputConfig:
    output: str
    num_shards: int = 4
    row_group_size: int = 1024
    report: bool = True
    overwrite: bool = False
    resume: bool = False


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    read: ReadConfig
    normalize: NormalizeConfig
    filters: FilterConfig
    quality: QualityConfig
    web: WebConfig | None  # None: no WARC/WET input, so no web columns
    tokenizer: str
    tokens: TokenConfig  # the tokenizer's model and the token shards (beam_jobs.tokens.options)
    near: NearDedupConfig | None  # None: near dedup off
    split: SplitConfig
    counts: CountsConfig
    output: OutputConfig
    options: dict  # every flag of ours and its value, for the manifest and the stage key
    overlap: OverlapConfig = OverlapConfig()  # containment split and leakage report
    decontaminate: DecontaminateConfig | None = None  # None: no evaluation sets
    ngram: NgramConfig = NgramConfig()
    perplexity: PerplexityConfig | None = None  # None: no --perplexity-model

    @classmethod
    def from_options(cls, opts: PrepareOptions) -> PrepareConfig:
        """Validated config of parsed flags; ValueError (one line) for a value that cannot
        work."""
        return cls(
            read=ReadConfig(
                tuple(opts.input),
                opts.format,
                opts.text_field,
                opts.id_field,
                opts.source_field,
                opts.max_record_bytes,
                opts.decode_errors,
                int(opts.read_block_mb * (1 << 20)),
                opts.encoding,
            ),
            normalize=NormalizeConfig(
                form=opts.unicode_form,
                lowercase=opts.lowercase,
                punct_to_space=opts.punct_to_space,
                whitespace=opts.whitespace,
            ),
            filters=FilterConfig(
                min_chars=opts.min_chars,
                max_chars=opts.max_chars,
                scripts=resolve_scripts(opts.scripts),
                min_script_ratio=opts.min_script_ratio,
                min_letter_ratio=opts.min_letter_ratio,
                max_duplicate_line_fraction=opts.max_duplicate_line_fraction,
                ngram_size=opts.duplicate_ngram_size,
                max_duplicate_ngram_fraction=opts.max_duplicate_ngram_fraction,
                max_replacement_fraction=opts.max_replacement_fraction,
            ),
            quality=quality_config(opts),
            web=web_config(opts, opts.max_record_bytes) if reads_web(opts) else None,
            tokenizer=(tokens := token_config(opts)).name,
            tokens=tokens,
            near=NearDedupConfig.from_options(opts),
            split=SplitConfig(opts.val_fraction, opts.split_seed),
            counts=CountsConfig(
                opts.min_count, opts.max_vocab, opts.ngram_order, opts.ngram_shards
            ),
            output=OutputConfig(
                opts.output,
                opts.num_shards,
                opts.row_group_size,
                opts.report,
                opts.overwrite,
                opts.resume,
            ),
            options=own_options(opts),
            overlap=OverlapConfig.from_options(opts),
            decontaminate=DecontaminateConfig.from_options(opts),
            ngram=NgramConfig.from_options(opts),
            perplexity=perplexity_config(opts),
        )

    def settings(self) -> dict:
        """How the data was made, as the manifest records it (`perplexity_filter` only when
        set, so that runs without it keep their manifests and stage keys)."""
        settings = {
            "normalization": self.normalize.to_dict(),
            "dedup_key": DEDUP_KEY,
            "filters": self.filters.to_dict(),
            "quality": self.quality.settings(),
            "web": dataclasses.asdict(self.web) if self.web else None,
            "tokenizer": self.tokens.settings(),
            "special_tokens": list(SPECIAL_TOKENS),
            "split": {
                "val_fraction": self.split.val_fraction,
                "seed": self.split.seed,
                "rule": COMPONENT_SPLIT_RULE if self.overlap.split else SPLIT_RULE,
                "overlap": self.overlap.settings(),
            },
            "decontamination": self.decontaminate.settings() if self.decontaminate else None,
            "near_dedup": self.near.settings() if self.near else None,
        }
        if self.perplexity is not None:
            settings["perplexity_filter"] = self.perplexity.settings()
        return settings


def reads_web(opts) -> bool:
    """Whether any input is WARC/WET (by --format, or by the matched files' names)."""
    if opts.format in WARC_FORMATS:
        return True
    if opts.format != "auto":
        return False
    return any(
        detect_format(meta.path, "auto") in WARC_FORMATS
        for result in FileSystems.match(list(opts.input))
        for meta in result.metadata_list
    )


def own_options(opts: PrepareOptions) -> dict:
    """Our flags and their values (runner flags excluded)."""
    parser = argparse.ArgumentParser()
    PrepareOptions._add_argparse_args(parser)
    dests = sorted({a.dest for a in parser._actions if a.dest != "help"})
    return {d: getattr(opts, d) for d in dests}
