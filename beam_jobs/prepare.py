"""The corpus pipeline: raw documents → clean, deduplicated, split Parquet shards with a
vocabulary, n-gram counts, statistics, a report and a manifest.

    python -m beam_jobs.prepare --input 'data/*.jsonl.gz' --output out/ [--runner ...]

Reads top-down like the pipeline; every stage lives in its own module.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import DirectOptions, StandardOptions
from apache_beam.runners.runner import create_runner

from beam_jobs import SCHEMA_VERSION
from beam_jobs.counts.combiners import BuildVocab, CountNgrams
from beam_jobs.dedup.exact import ExactDedup, RedirectToKept
from beam_jobs.dedup.ids import UniqueIds
from beam_jobs.dedup.near import AddSignature, NearDedup
from beam_jobs.io.fs import write_json
from beam_jobs.io.parquet import DUPLICATE_SCHEMA, REJECTED_SCHEMA, WriteShardedParquet
from beam_jobs.io.read import ReadDocuments, check_inputs_exist
from beam_jobs.io.shards import WriteSplitShards
from beam_jobs.io.spill import KeysFromSpill, SpillDocuments, remove_unreferenced
from beam_jobs.options import PrepareOptions, filter_config, normalize_config, validate
from beam_jobs.outputs.manifest import MANIFEST, build_manifest, read_manifest, write_manifest
from beam_jobs.outputs.report import draw_report
from beam_jobs.outputs.stages import (
    SPILL_DIR,
    STAGE_DIR,
    decode_counter,
    encode_counter,
    input_metadata,
    read_marker,
    stage_key,
    write_marker,
)
from beam_jobs.outputs.stats import StatsFn, finalize
from beam_jobs.runtime.prism import configure_prism
from beam_jobs.runtime.worker_env import local_worker_env, tune_this_process
from beam_jobs.text.clean import CleanDocuments
from beam_jobs.tokens.tokenizers import SPECIAL_TOKENS, get_tokenizer

# Written after the dedup stage; manifest first, so deleting in this order never leaves a
# directory that looks complete.
FINAL_OUTPUTS = (MANIFEST, "stats.json", "vocab.json", "train", "val", "ngrams", "report")
# Written by the dedup stage, marker included.
STAGE_OUTPUTS = (STAGE_DIR, "duplicates", "rejected")


def own_options(opts: PrepareOptions) -> dict:
    """Our flags and their values (runner flags excluded), for the manifest."""
    parser = argparse.ArgumentParser()
    PrepareOptions._add_argparse_args(parser)
    dests = sorted({a.dest for a in parser._actions if a.dest != "help"})
    return {d: getattr(opts, d) for d in dests}


def near_dedup_stage(opts):
    """The near-dedup transform when enabled (None otherwise)."""
    return NearDedup.from_options(opts) if opts.near_dedup else None


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
    """Runs once, after every output is written (all side inputs are complete, the dedup
    stage's marker included): stats.json, the report, and last the manifest."""

    def __init__(self, output_dir: str, options: dict, settings: dict, report: bool):
        self.output_dir, self.options, self.settings = output_dir, options, settings
        self.report = report

    def process(self, _, kept_events, stage, vocab, doc_shards, ngram_shards):
        stats = finalize(kept_events + decode_counter(stage["events"]))
        write_json(FileSystems.join(self.output_dir, "stats.json"), stats)
        report = draw_report(self.output_dir, stats, vocab) if self.report else []
        manifest = build_manifest(
            options=self.options, settings=self.settings, files=stage["files"],
            doc_shards=doc_shards, ngram_shards=ngram_shards,
            duplicate_shards=stage["duplicate_shards"],
            rejected_shards=stage["rejected_shards"], report=report)
        write_manifest(self.output_dir, manifest)
        yield manifest


class StageDone(beam.DoFn):
    """Writes the dedup stage's marker once all its outputs are written, after removing any
    spill file that no finished bundle referenced."""

    def __init__(self, output_dir: str, key: str):
        self.output_dir, self.key = output_dir, key

    def process(self, _, events, files, spill_files, duplicate_shards, rejected_shards):
        remove_unreferenced(self.output_dir, SPILL_DIR, {f["path"] for f in spill_files})
        marker = {
            "stage": "dedup", "key": self.key, "events": encode_counter(events),
            "files": sorted(files, key=lambda f: f["path"]),
            "spill_files": sorted(spill_files, key=lambda s: s["path"]),
            "duplicate_shards": sorted(duplicate_shards, key=lambda s: s["path"]),
            "rejected_shards": sorted(rejected_shards, key=lambda s: s["path"])}
        write_marker(self.output_dir, marker)
        yield marker


def build_dedup_stage(pipeline: beam.Pipeline, opts: PrepareOptions, key: str):
    """First job: read → clean → spill → exact dedup → near dedup. The documents stay in the
    spill files where they were cleaned; only small records cross the dedup shuffles. Writes
    the duplicate and rejected tables, and last the marker."""
    out = opts.output
    near_dedup = near_dedup_stage(opts)
    read = pipeline | "Read" >> ReadDocuments(
        opts.input, fmt=opts.format, text_field=opts.text_field, id_field=opts.id_field,
        source_field=opts.source_field, max_record_bytes=opts.max_record_bytes,
        decode_errors=opts.decode_errors, block_bytes=int(opts.read_block_mb * (1 << 20)))
    clean = read["docs"] | "Clean" >> CleanDocuments(
        normalize_config(opts), filter_config(opts), opts.tokenizer)
    docs = clean["docs"]
    if near_dedup is not None:
        docs = docs | "Sign" >> beam.ParDo(AddSignature(near_dedup.hasher))
    spilled = docs | "SpillDocs" >> SpillDocuments(out, SPILL_DIR, opts.num_shards)
    unique = spilled["records"] | "UniqueIds" >> UniqueIds()
    exact = unique["records"] | "ExactDedup" >> ExactDedup()
    duplicates = [exact["duplicates"]]
    if near_dedup is not None:
        kept = exact["kept"]
        places = kept | "PlaceOf" >> beam.Map(
            lambda r: (r["id"], (r["spill"], r["file"], r["line"])))
        near = kept | "NearDedup" >> near_dedup.find_in(KeysFromSpill(out, places))
        duplicates = [duplicates[0] | "RedirectToKept" >> RedirectToKept(near["duplicates"]),
                      near["duplicates"]]

    all_duplicates = duplicates | "AllDuplicates" >> beam.Flatten()
    duplicate_shards = all_duplicates | "WriteDuplicates" >> WriteShardedParquet(
        out, "duplicates", "duplicates", opts.num_shards, DUPLICATE_SCHEMA,
        row_group_size=65536)
    rejected = (read["rejected"], unique["rejected"]) | "AllRejected" >> beam.Flatten()
    rejected_shards = rejected | "WriteRejected" >> WriteShardedParquet(
        out, "rejected", "rejected", 1, REJECTED_SCHEMA,
        sort_key=("file", "line", "reason", "raw"), shard_key="file", row_group_size=65536)
    events = [
        read["files"] | "ReadEvents" >> beam.Map(lambda f: ("read", f["path"], f["records"])),
        rejected | "RejectedEvents" >> beam.Map(
            lambda r: ("rejected", r["reason"], r["file"])),
        clean["filtered"] | "FilteredEvents" >> beam.Map(
            lambda r: ("filtered", r["reason"], r["file"])),
        all_duplicates | "DuplicateEvents" >> beam.Map(
            lambda r: ("duplicate", r["kind"], r.get("file"))),
    ]
    counts = (events | "AllEvents" >> beam.Flatten()
              | "CountEvents" >> beam.CombineGlobally(StatsFn(raw=True)))
    side = beam.pvalue
    marker = (pipeline
              | "Once" >> beam.Create([None])
              | "StageDone" >> beam.ParDo(
                  StageDone(out, key), events=side.AsSingleton(counts),
                  files=side.AsList(read["files"]), spill_files=side.AsList(spilled["files"]),
                  duplicate_shards=side.AsList(duplicate_shards),
                  rejected_shards=side.AsList(rejected_shards)))
    removed = all_duplicates | "RemovedIds" >> beam.Map(lambda row: row["id"])
    return {"marker": marker, "spill_files": spilled["files"], "removed": removed}


def reuse_dedup_stage(pipeline: beam.Pipeline, opts: PrepareOptions, marker: dict):
    """The dedup stage of an earlier run, from its marker and files, as `build_dedup_stage`
    returns it (for `--resume`)."""
    out = opts.output
    removed = (pipeline
               | "DuplicateShards" >> beam.Create(
                   [FileSystems.join(out, s["path"]) for s in marker["duplicate_shards"]])
               | "ReadDuplicates" >> beam.io.ReadAllFromParquet(columns=["id"])
               | "RemovedIds" >> beam.Map(lambda row: row["id"]))
    return {"marker": pipeline | "Marker" >> beam.Create([marker]),
            "spill_files": pipeline | "SpillFiles" >> beam.Create(marker["spill_files"]),
            "removed": removed}


def build_pipeline(pipeline: beam.Pipeline, opts: PrepareOptions, stage: dict):
    """The dedup stage's spill files minus the removed ids → train/val shards written shard by
    shard, vocabulary, n-grams, stats, report and manifest. `stage` is what
    `build_dedup_stage` (same job) or `reuse_dedup_stage` returns. Returns the PCollection
    holding the manifest (one element)."""
    out = opts.output
    written = (stage["spill_files"], stage["removed"]) | "WriteSplits" >> WriteSplitShards(
        out, opts.num_shards, opts.val_fraction, opts.split_seed, opts.row_group_size)
    kept = written["kept"]
    train_texts = (kept
                   | "Train" >> beam.Filter(lambda d: d["split"] == "train")
                   | "TrainTexts" >> beam.Map(lambda d: d["text"]))
    vocab = train_texts | "Vocabulary" >> BuildVocab(
        out, opts.tokenizer, opts.min_count, opts.max_vocab)
    ngram_shards = train_texts | "NgramCounts" >> CountNgrams(
        out, opts.tokenizer, opts.ngram_order, opts.ngram_shards)
    kept_events = (kept
                   | "KeptEvents" >> beam.Map(
                       lambda d: ("kept", d["split"], d["n_chars"], d["n_tokens"], d["file"]))
                   | "Stats" >> beam.CombineGlobally(StatsFn(raw=True)))
    side = beam.pvalue
    return (pipeline
            | "Last" >> beam.Create([None])
            | "Finish" >> beam.ParDo(
                Finish(out, own_options(opts), stage_settings(opts, near_dedup_stage(opts)),
                       opts.report),
                kept_events=side.AsSingleton(kept_events),
                stage=side.AsSingleton(stage["marker"]), vocab=side.AsSingleton(vocab),
                doc_shards=side.AsList(written["shards"]),
                ngram_shards=side.AsList(ngram_shards)))


def counter_values(result) -> dict:
    """{namespace: {counter: value}} of a finished pipeline, where the runner reports them."""
    values: dict = {}
    try:
        counters = result.metrics().query()["counters"]
    except Exception:  # a runner without metrics support
        return values
    for counter in counters:
        value = counter.committed if counter.committed is not None else counter.attempted
        values.setdefault(counter.key.metric.namespace, {})[counter.key.metric.name] = (
            values.get(counter.key.metric.namespace, {}).get(counter.key.metric.name, 0)
            + int(value or 0))
    return {ns: dict(sorted(names.items())) for ns, names in sorted(values.items())}


def prepare_output_dir(output: str, overwrite: bool, resume: bool) -> None:
    """Refuse to mix runs in one directory unless asked; clear the final outputs when asked.

    The manifest goes first, so an interrupted rerun never looks complete. `--resume` keeps
    the materialized dedup stage; `--overwrite` alone removes it too."""
    def exists(name):
        return FileSystems.exists(FileSystems.join(output, name))

    if exists(MANIFEST) and not overwrite:
        raise ValueError(f"{output} already holds a complete run ({MANIFEST}); pass "
                         "--overwrite to replace it (with --resume to reuse its dedup stage)")
    leftovers = [name for name in FINAL_OUTPUTS + STAGE_OUTPUTS if exists(name)]
    if leftovers and not (overwrite or resume):
        raise ValueError(f"{output} holds an incomplete run ({', '.join(leftovers)}); pass "
                         "--resume to reuse its completed stages or --overwrite to start over")
    if not resume:
        delete_outputs(output, FINAL_OUTPUTS + STAGE_OUTPUTS)
    else:
        delete_outputs(output, FINAL_OUTPUTS)


def delete_outputs(output: str, names) -> None:
    paths = [FileSystems.join(output, name) for name in names]
    paths = [p for p in paths if FileSystems.exists(p)]
    if paths:
        FileSystems.delete(paths)


def parse_options(argv=None) -> PrepareOptions:
    opts = PrepareOptions(argv)
    standard = opts.view_as(StandardOptions)
    if not standard.runner:
        # Beam 2.77's DirectRunner (also when named) first tries to download and start the
        # Prism runner, then falls back to the FnApiRunner; name that one instead, so a local
        # run never reaches for the network and always runs on the engine tested here.
        standard.runner = "FnApiRunner"
    try:
        create_runner(standard.runner)
    except (ValueError, ImportError) as exc:
        raise ValueError(f"--runner {standard.runner}: {str(exc).splitlines()[0]}") from None
    configure_prism(opts)  # Prism's binary, found before any work (runtime/prism.py)
    if opts.view_as(DirectOptions).direct_running_mode == "multi_threading":
        raise ValueError("--direct_running_mode=multi_threading loses records on this Beam "
                         "version; use in_memory or multi_processing")
    validate(opts)
    return opts


# Inputs from this size on run on worker processes by default. Measured on a 2-core machine,
# two workers against in-process: 0.4 MB of gzip (the sample) 5.4 vs 3.5 s, 3.4 MB 6.7 vs
# 6.1 s, 14.7 MB 11.3 vs 12.5 s, 20 MB (all corpora/ja) 15.7 vs 18.3 s. See docs/scaling.md.
LOCAL_PARALLEL_BYTES = 8 << 20
MAX_LOCAL_WORKERS = 4


def choose_local_mode(opts: PrepareOptions, argv: list[str], input_bytes: int,
                      cpus: int | None = None) -> None:
    """With no `--runner` and no `--direct_*` flag: worker processes (one a core, at most
    `MAX_LOCAL_WORKERS`) when the input files hold `LOCAL_PARALLEL_BYTES` or more, else the
    in-process runner. Any of those flags given means the user chose."""
    if any(a.startswith(("--runner", "--direct_num_workers", "--direct_running_mode"))
           for a in argv):
        return
    cpus = cpus or os.cpu_count() or 1
    if input_bytes >= LOCAL_PARALLEL_BYTES and cpus > 1:
        direct = opts.view_as(DirectOptions)
        direct.direct_running_mode = "multi_processing"
        direct.direct_num_workers = min(cpus, MAX_LOCAL_WORKERS)
        logging.info("%.0f MB of input: %d worker processes (--direct_num_workers=1 for one)",
                     input_bytes / 1e6, direct.direct_num_workers)


def run(argv=None) -> dict:
    """Run the pipeline to completion as one Beam job; with `--resume` and a marker for the
    same options and inputs, the job starts from the materialized dedup stage instead of the
    input. Returns the manifest."""
    opts = parse_options(argv)
    check_inputs_exist(opts.input)
    prepare_output_dir(opts.output, opts.overwrite, opts.resume)
    started = time.time()
    near_dedup = near_dedup_stage(opts)
    inputs = input_metadata(opts.input)
    choose_local_mode(opts, sys.argv[1:] if argv is None else argv,
                      sum(f["bytes"] or 0 for f in inputs))
    key = stage_key(own_options(opts), {"schema_version": SCHEMA_VERSION,
                                        "near_dedup": near_dedup and near_dedup.settings()},
                    inputs)
    marker = read_marker(opts.output) if opts.resume else None
    reuse = marker is not None and marker.get("key") == key
    pipeline = beam.Pipeline(options=opts)
    if reuse:
        logging.warning("reusing the dedup stage in %s", FileSystems.join(opts.output, STAGE_DIR))
        stage = reuse_dedup_stage(pipeline, opts, marker)
    else:
        delete_outputs(opts.output, STAGE_OUTPUTS)
        stage = build_dedup_stage(pipeline, opts, key)
    build_pipeline(pipeline, opts, stage)
    with local_worker_env(opts):
        result = pipeline.run()
        result.wait_until_finish()
    manifest = read_manifest(opts.output)
    if manifest is None or manifest.get("schema_version") != SCHEMA_VERSION:
        raise RuntimeError(f"the pipeline finished but {opts.output}/{MANIFEST} is missing")
    if not reuse:  # the run's Beam counters, kept with the stage they describe
        marker = read_marker(opts.output)
        write_marker(opts.output, {**marker, "metrics": counter_values(result)})
    logging.info("prepared %s in %.1f s", opts.output, time.time() - started)
    return manifest


def main(argv=None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    tune_this_process()
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
