"""The corpus pipeline: raw documents → clean, deduplicated, split Parquet shards with a
vocabulary, n-gram counts, statistics, a report and a manifest.

    python -m beam_jobs.prepare --input 'data/*.jsonl.gz' --output out/ [--runner ...]

Reads top-down like the pipeline; every stage lives in its own module.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import DirectOptions, StandardOptions
from apache_beam.runners.runner import create_runner

from beam_jobs import SCHEMA_VERSION
from beam_jobs.clean import CleanDocuments
from beam_jobs.counts import BuildVocab, CountNgrams
from beam_jobs.exact_dedup import ExactDedup
from beam_jobs.manifest import MANIFEST, build_manifest, write_manifest
from beam_jobs.options import PrepareOptions, filter_config, normalize_config, validate
from beam_jobs.read import ReadDocuments, check_inputs_exist
from beam_jobs.report import draw_report
from beam_jobs.sinks import (
    DOC_SCHEMA,
    DUPLICATE_SCHEMA,
    REJECTED_SCHEMA,
    WriteShardedParquet,
    write_json,
)
from beam_jobs.split import assign_split
from beam_jobs.stats import StatsFn
from beam_jobs.tokenizers import SPECIAL_TOKENS, get_tokenizer

OUTPUT_SUBDIRS = ("train", "val", "ngrams", "duplicates", "rejected", "report")


def own_options(opts: PrepareOptions) -> dict:
    """Our flags and their values (runner flags excluded), for the manifest."""
    parser = argparse.ArgumentParser()
    PrepareOptions._add_argparse_args(parser)
    dests = sorted({a.dest for a in parser._actions if a.dest != "help"})
    return {d: getattr(opts, d) for d in dests}


def near_dedup_stage(opts):
    """The near-dedup transform when enabled (None otherwise)."""
    if not getattr(opts, "near_dedup", False):
        return None
    from beam_jobs.near_dedup import NearDedup

    return NearDedup.from_options(opts)


def stage_settings(opts, near_dedup) -> dict:
    return {
        "normalization": normalize_config(opts).to_dict(),
        "dedup_key": "NFKC, lower-case, seed punctuation to space, whitespace folded",
        "filters": filter_config(opts).to_dict(),
        "tokenizer": get_tokenizer(opts.tokenizer).config(),
        "special_tokens": list(SPECIAL_TOKENS),
        "split": {"val_fraction": opts.val_fraction, "seed": opts.split_seed,
                  "rule": "blake2b-64(id, person='split'+seed) < val_fraction * 2**64"},
        "near_dedup": near_dedup.settings() if near_dedup else None,
    }


class Finish(beam.DoFn):
    """Runs once, after every output is written (all side inputs are complete): stats.json,
    the report, and last the manifest."""

    def __init__(self, output_dir: str, options: dict, settings: dict, report: bool):
        self.output_dir, self.options, self.settings, self.report = (
            output_dir, options, settings, report)

    def process(self, _, stats, vocab, files, doc_shards, ngram_shards, duplicate_shards,
                rejected_shards):
        write_json(FileSystems.join(self.output_dir, "stats.json"), stats)
        report = draw_report(self.output_dir, stats, vocab) if self.report else []
        manifest = build_manifest(
            options=self.options, settings=self.settings, files=files, doc_shards=doc_shards,
            ngram_shards=ngram_shards, duplicate_shards=duplicate_shards,
            rejected_shards=rejected_shards, report=report)
        write_manifest(self.output_dir, manifest)
        yield manifest


def build_pipeline(pipeline: beam.Pipeline, opts: PrepareOptions):
    """Wire every stage; returns the PCollection holding the manifest (one element)."""
    out = opts.output
    near_dedup = near_dedup_stage(opts)

    read = pipeline | "Read" >> ReadDocuments(
        opts.input, fmt=opts.format, text_field=opts.text_field, id_field=opts.id_field,
        source_field=opts.source_field, max_record_bytes=opts.max_record_bytes,
        decode_errors=opts.decode_errors)
    clean = read["docs"] | "Clean" >> CleanDocuments(
        normalize_config(opts), filter_config(opts), opts.tokenizer)
    exact = clean["docs"] | "ExactDedup" >> ExactDedup()
    docs, duplicates = exact["kept"], [exact["duplicates"]]
    if near_dedup is not None:
        near = docs | "NearDedup" >> near_dedup
        docs = near["kept"]
        duplicates.append(near["duplicates"])

    val_fraction, seed = opts.val_fraction, opts.split_seed
    train, val = (docs
                  | "Split" >> beam.Map(lambda d: {**d, "split": assign_split(
                      d["id"], val_fraction, seed)})
                  | "PartitionSplits" >> beam.Partition(
                      lambda d, _: 0 if d["split"] == "train" else 1, 2))

    def shards(name):
        return WriteShardedParquet(out, name, name, opts.num_shards, DOC_SCHEMA,
                                   sum_columns=("n_tokens", "n_chars"),
                                   row_group_size=opts.row_group_size)

    doc_shards = [
        split | f"Write{name.title()}" >> shards(name)
        | f"Tag{name.title()}" >> beam.Map(lambda info, n=name: {**info, "split": n})
        for name, split in (("train", train), ("val", val))]
    train_texts = train | "TrainTexts" >> beam.Map(lambda d: d["text"])
    vocab = train_texts | "Vocabulary" >> BuildVocab(
        out, opts.tokenizer, opts.min_count, opts.max_vocab)
    ngram_shards = train_texts | "NgramCounts" >> CountNgrams(
        out, opts.tokenizer, opts.ngram_order, opts.ngram_shards)
    all_duplicates = duplicates | "AllDuplicates" >> beam.Flatten()
    duplicate_shards = all_duplicates | "WriteDuplicates" >> WriteShardedParquet(
        out, "duplicates", "duplicates", opts.num_shards, DUPLICATE_SCHEMA,
        row_group_size=65536)
    rejected_shards = read["rejected"] | "WriteRejected" >> WriteShardedParquet(
        out, "rejected", "rejected", 1, REJECTED_SCHEMA, sort_key="raw",
        shard_key="file", row_group_size=65536)

    events = [
        read["files"] | "ReadEvents" >> beam.Map(lambda f: ("read", f["path"], f["records"])),
        read["rejected"] | "RejectedEvents" >> beam.Map(
            lambda r: ("rejected", r["reason"], r["file"])),
        clean["filtered"] | "FilteredEvents" >> beam.Map(
            lambda r: ("filtered", r["reason"], r["file"])),
        all_duplicates | "DuplicateEvents" >> beam.Map(
            lambda r: ("duplicate", r["kind"], r.get("file"))),
        (train, val) | "AllKept" >> beam.Flatten() | "KeptEvents" >> beam.Map(
            lambda d: ("kept", d["split"], d["n_chars"], d["n_tokens"], d["file"])),
    ]
    stats = events | "AllEvents" >> beam.Flatten() | "Stats" >> beam.CombineGlobally(StatsFn())

    side = beam.pvalue
    return (pipeline
            | "Once" >> beam.Create([None])
            | "Finish" >> beam.ParDo(
                Finish(out, own_options(opts), stage_settings(opts, near_dedup), opts.report),
                stats=side.AsSingleton(stats), vocab=side.AsSingleton(vocab),
                files=side.AsList(read["files"]),
                doc_shards=side.AsList(doc_shards | "AllDocShards" >> beam.Flatten()),
                ngram_shards=side.AsList(ngram_shards),
                duplicate_shards=side.AsList(duplicate_shards),
                rejected_shards=side.AsList(rejected_shards)))


def prepare_output_dir(output: str, overwrite: bool) -> None:
    """Refuse to write over a complete run unless asked; clear the outputs when asked."""
    manifest = FileSystems.join(output, MANIFEST)
    if FileSystems.exists(manifest) and not overwrite:
        raise ValueError(f"{output} already holds a complete run ({MANIFEST}); "
                         "pass --overwrite to replace it")
    if overwrite:
        # The manifest goes first, so an interrupted rerun never looks complete.
        stale = [FileSystems.join(output, p) for p in (MANIFEST, "stats.json", "vocab.json",
                                                      *OUTPUT_SUBDIRS)]
        stale = [p for p in stale if FileSystems.exists(p)]
        if stale:
            FileSystems.delete(stale)


def parse_options(argv=None) -> PrepareOptions:
    opts = PrepareOptions(argv)
    standard = opts.view_as(StandardOptions)
    if not standard.runner:
        # With no runner Beam first tries to download Prism; name the local one instead.
        standard.runner = "DirectRunner"
    try:
        create_runner(standard.runner)
    except (ValueError, ImportError) as exc:
        raise ValueError(f"--runner {standard.runner}: {str(exc).splitlines()[0]}") from None
    if opts.view_as(DirectOptions).direct_running_mode == "multi_threading":
        raise ValueError("--direct_running_mode=multi_threading loses records on this Beam "
                         "version; use in_memory or multi_processing")
    validate(opts)
    return opts


def run(argv=None) -> dict:
    """Run the pipeline to completion; returns the manifest."""
    opts = parse_options(argv)
    check_inputs_exist(opts.input)
    prepare_output_dir(opts.output, opts.overwrite)
    started = time.time()
    with beam.Pipeline(options=opts) as pipeline:
        build_pipeline(pipeline, opts)
    from beam_jobs.manifest import read_manifest

    manifest = read_manifest(opts.output)
    if manifest is None or manifest.get("schema_version") != SCHEMA_VERSION:
        raise RuntimeError(f"the pipeline finished but {opts.output}/{MANIFEST} is missing")
    logging.info("prepared %s in %.1f s", opts.output, time.time() - started)
    return manifest


def main(argv=None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        manifest = run(argv)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    splits = manifest["splits"]
    stats_line = (f"train {splits['train']['rows']} docs / {splits['train']['tokens']} tokens, "
                  f"val {splits['val']['rows']} docs / {splits['val']['tokens']} tokens")
    print(f"prepared: {stats_line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
