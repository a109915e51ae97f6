"""The corpus pipeline: raw documents → clean, deduplicated, split Parquet shards with a
vocabulary, n-gram counts, statistics, a report and a manifest.

    python -m beam_jobs.prepare --input 'data/*.jsonl.gz' --output out/ [--runner ...]

Reads top-down like the pipeline (docs/architecture.md): the dedup stage (read → clean → spill
→ unique ids → exact dedup → near dedup), then the shards, counts, statistics and manifest.
"""

from __future__ import annotations

import logging
import sys
import time

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from beam_jobs import SCHEMA_VERSION
from beam_jobs.config import PrepareConfig
from beam_jobs.counts.combiners import BuildVocab, CountNgrams
from beam_jobs.counts.id_vocab import BuildIdVocab
from beam_jobs.dedup.exact import ExactDedup, RedirectToKept
from beam_jobs.dedup.ids import UniqueIds
from beam_jobs.dedup.near import AddSignature, NearDedup
from beam_jobs.io.files import check_inputs_exist, common_base
from beam_jobs.io.fingerprint import local_digests
from beam_jobs.io.parquet import WriteShardedParquet
from beam_jobs.io.read import ReadDocuments
from beam_jobs.io.shards import WriteSplitShards
from beam_jobs.io.spill import SpillDocuments
from beam_jobs.io.token_shards import ID_COUNTS, TOKEN_FILES, TokenShards
from beam_jobs.options import (
    PrepareOptions,
    all_flags_parser,
    check_flags,
    help_text,
    validate,
)
from beam_jobs.outputs.directory import (
    STAGE_OUTPUTS,
    check_output_path,
    delete_outputs,
    prepare_output_dir,
)
from beam_jobs.outputs.finish import Finish, StageDone
from beam_jobs.outputs.lock import OutputLock
from beam_jobs.outputs.manifest import MANIFEST, read_manifest
from beam_jobs.outputs.stages import (
    SPILL_DIR,
    STAGE_DIR,
    input_metadata,
    read_marker,
    stage_key,
    write_marker,
)
from beam_jobs.outputs.stats import CountEvents
from beam_jobs.overlap.steps import Leakage, build_index
from beam_jobs.records import (
    DUPLICATE_SCHEMA,
    REJECTED_SCHEMA,
    REJECTED_WEB_SCHEMA,
    Event,
    SpillFile,
)
from beam_jobs.runtime.flags import legacy_bool_values
from beam_jobs.runtime.prism import configure_prism
from beam_jobs.runtime.runner import choose_local_mode, counter_values, resolve_runner
from beam_jobs.runtime.worker_env import local_worker_env, tune_this_process
from beam_jobs.text.clean import CleanDocuments
from beam_jobs.text.perplexity_filter import ScorePerplexity
from beam_jobs.tokens.steps import BuildTokenizer, saved_model_config, user_error


def build_dedup_stage(
    pipeline: beam.Pipeline, config: PrepareConfig, key: str, run_id: str
) -> dict:
    """read → clean → spill → unique ids → exact dedup → near dedup. The documents stay in
    the spill files where they were cleaned; only `DedupRecord`s cross the dedup shuffles.
    Writes the duplicate and rejected tables, and last the stage's marker."""
    out, web = config.output.output, config.web is not None
    read = pipeline | "Read" >> ReadDocuments(config.read, config.web)
    clean = read["docs"] | "Clean" >> CleanDocuments(
        config.normalize, config.filters, config.tokens.clean_tokenizer, config.quality
    )
    docs, filtered = clean["docs"], [read["filtered"], clean["filtered"]]
    if config.perplexity is not None:
        scored = docs | "Perplexity" >> ScorePerplexity(config.perplexity)
        docs = scored["docs"]
        filtered.append(scored["filtered"])
    if config.near is not None:
        docs = docs | "Sign" >> beam.ParDo(AddSignature(config.near.hasher()))
    spilled = docs | "SpillDocs" >> SpillDocuments(
        out, SPILL_DIR, config.output.num_shards, web=web, perplexity=config.perplexity is not None
    )
    unique = spilled["records"] | "UniqueIds" >> UniqueIds()
    exact = unique["records"] | "ExactDedup" >> ExactDedup()
    duplicates = [exact["duplicates"]]
    if config.near is not None:
        near = exact["kept"] | "NearDedup" >> NearDedup(config.near, out)
        duplicates = [
            duplicates[0] | "RedirectToKept" >> RedirectToKept(near["duplicates"]),
            near["duplicates"],
        ]

    all_duplicates = duplicates | "AllDuplicates" >> beam.Flatten()
    duplicate_shards = all_duplicates | "WriteDuplicates" >> WriteShardedParquet(
        out,
        "duplicates",
        "duplicates",
        config.output.num_shards,
        DUPLICATE_SCHEMA,
        row_group_size=65536,
    )
    rejected = (read["rejected"], unique["rejected"]) | "AllRejected" >> beam.Flatten()
    rejected_shards = rejected | "WriteRejected" >> WriteShardedParquet(
        out,
        "rejected",
        "rejected",
        1,
        REJECTED_WEB_SCHEMA if web else REJECTED_SCHEMA,
        sort_key=("file", "line", "reason", "raw"),
        shard_key="file",
        row_group_size=65536,
    )
    events = [
        read["files"] | "ReadEvents" >> beam.Map(lambda f: Event("read", f.path, n=f.records)),
        rejected | "RejectedEvents" >> beam.Map(lambda r: Event("rejected", r.file, r.reason)),
        filtered
        | "AllFiltered" >> beam.Flatten()
        | "FilteredEvents" >> beam.Map(lambda r: Event("filtered", r.file, r.reason)),
        read["skipped"],
        clean["pii"],
        all_duplicates
        | "DuplicateEvents" >> beam.Map(lambda r: Event("duplicate", r.file, r.kind)),
    ]
    counts = (
        events
        | "AllEvents" >> beam.Flatten()
        | "CountEvents" >> beam.CombineGlobally(CountEvents())
    )
    side = beam.pvalue
    marker = (
        pipeline
        | "Once" >> beam.Create([None])
        | "StageDone"
        >> beam.ParDo(
            StageDone(out, key, run_id),
            events=side.AsSingleton(counts),
            files=side.AsList(read["files"]),
            spill_files=side.AsList(spilled["files"]),
            duplicate_shards=side.AsList(duplicate_shards),
            rejected_shards=side.AsList(rejected_shards),
        )
    )
    removed = all_duplicates | "RemovedIds" >> beam.Map(lambda row: row.id)
    return {"marker": marker, "spill_files": spilled["files"], "removed": removed}


def reuse_dedup_stage(pipeline: beam.Pipeline, config: PrepareConfig, marker: dict) -> dict:
    """The dedup stage of an earlier run, from its marker and files, as `build_dedup_stage`
    returns it (for `--resume`)."""
    out = config.output.output
    removed = (
        pipeline
        | "DuplicateShards"
        >> beam.Create([FileSystems.join(out, s["path"]) for s in marker["duplicate_shards"]])
        | "ReadDuplicates" >> beam.io.ReadAllFromParquet(columns=["id"])
        | "RemovedIds" >> beam.Map(lambda row: row["id"])
    )
    spill_files = [SpillFile(**s) for s in marker["spill_files"]]
    return {
        "marker": pipeline | "Marker" >> beam.Create([marker]),
        "spill_files": pipeline | "SpillFiles" >> beam.Create(spill_files),
        "removed": removed,
    }


def build_final_steps(pipeline: beam.Pipeline, config: PrepareConfig, stage: dict, run_id: str):
    """The dedup stage's spill files minus the removed ids → train/val shards written shard by
    shard, vocabulary, n-grams, stats, report and manifest. `stage` is what
    `build_dedup_stage` (same job) or `reuse_dedup_stage` returns. Returns the PCollection
    holding the manifest (one element)."""
    out, counts, tokens = config.output.output, config.counts, config.tokens
    leakage = build_leakage(pipeline, config, stage)
    write = WriteSplitShards(
        out,
        config.output.num_shards,
        config.split.val_fraction,
        config.split.seed,
        config.output.row_group_size,
        web=config.web is not None,
        perplexity=config.perplexity is not None,
    )
    inputs = leakage["inputs"]
    tokenizer = None
    if tokens.has_ids:  # trained on what `write` writes as train, then used by it
        tokenizer = inputs | "Tokenizer" >> BuildTokenizer(tokens, write.fn, out)
        write.with_tokens(TokenShards(out, tokens.formats, config.output.num_shards), tokenizer)
    written = inputs | "WriteSplits" >> write
    kept = written["kept"]
    train_texts = (
        kept
        | "Train" >> beam.Filter(lambda d: d.split == "train")
        | "TrainTexts" >> beam.Map(lambda d: d.text)
    )
    if tokenizer is None:
        vocab = train_texts | "Vocabulary" >> BuildVocab(
            out, config.tokenizer, counts.min_count, counts.max_vocab
        )
    else:
        vocab = written[ID_COUNTS] | "Vocabulary" >> BuildIdVocab(out, tokenizer)
    ngram_shards = train_texts | "NgramCounts" >> CountNgrams(
        out,
        saved_model_config(tokens),
        counts.ngram_order,
        counts.ngram_shards,
        min_counts=config.ngram.min_counts,
        buffer_mb=config.ngram.buffer_mb,
        tokenizer_dir=out,
    )
    kept_events = (
        [
            kept
            | "KeptEvents"
            >> beam.Map(
                lambda d: Event("kept", d.file, d.split, chars=d.n_chars, tokens=d.n_tokens)
            ),
            *leakage["events"],
        ]
        | "FinalEvents" >> beam.Flatten()
        | "Stats" >> beam.CombineGlobally(CountEvents())
    )
    side = beam.pvalue
    return (
        pipeline
        | "Last" >> beam.Create([None])
        | "Finish"
        >> beam.ParDo(
            Finish(out, config.options, config.settings(), config.output.report, run_id),
            kept_events=side.AsSingleton(kept_events),
            stage=side.AsSingleton(stage["marker"]),
            vocab=side.AsSingleton(vocab),
            doc_shards=side.AsList(written["shards"]),
            ngram_shards=side.AsList(ngram_shards),
            **leakage["finish"],
            **(
                {}
                if tokenizer is None
                else {
                    "tokenizer": side.AsSingleton(tokenizer),
                    "token_files": side.AsList(written[TOKEN_FILES]),
                }
            ),
        )
    )


def build_leakage(pipeline: beam.Pipeline, config: PrepareConfig, stage: dict) -> dict:
    """The containment split, leakage report and decontamination (beam_jobs/overlap/), when
    on: {'inputs': of WriteSplitShards, 'events': contamination `Event`s, 'finish': Finish's
    extra side inputs}."""
    inputs = (stage["spill_files"], stage["removed"])
    index = build_index(config.decontaminate)
    if not config.overlap.active and index is None:
        return {"inputs": inputs, "events": [], "finish": {}}
    out, side = config.output.output, beam.pvalue
    leak = inputs | "Leakage" >> Leakage(
        out,
        config.output.num_shards,
        config.overlap,
        config.decontaminate,
        index,
        config.split.val_fraction,
        config.split.seed,
        config.tokens.clean_tokenizer,
    )
    finish = {"leakage": side.AsSingleton(leak["stats"])}
    events = []
    if leak["duplicates"] is not None:
        removed = (
            stage["removed"],
            leak["duplicates"] | "ContaminatedIds" >> beam.Map(lambda row: row.id),
        ) | "AllRemoved" >> beam.Flatten()
        inputs = (stage["spill_files"], removed)
        shards = leak["duplicates"] | "WriteContaminated" >> WriteShardedParquet(
            out, "duplicates", "contaminated", 1, DUPLICATE_SCHEMA, row_group_size=65536
        )
        finish["contaminated_shards"] = side.AsList(shards)
        events = [leak["events"]]
    if leak["moved"] is not None or leak["masked"] is not None:
        moved = leak["moved"]
        if moved is None:  # WriteSplitShards takes the masked texts after the moves
            moved = pipeline | "NoneMoved" >> beam.Create([])
        inputs = (*inputs, moved, *([leak["masked"]] if leak["masked"] is not None else []))
    return {"inputs": inputs, "events": events, "finish": finish}


def parse_options(argv=None) -> tuple[PrepareOptions, PrepareConfig]:
    """Flags → (Beam options, our config); ValueError (one line) for anything that cannot
    work, before any work is done."""
    argv = legacy_bool_values(sys.argv[1:] if argv is None else list(argv), all_flags_parser())
    check_flags(argv)
    opts = PrepareOptions(argv)
    resolve_runner(opts)
    configure_prism(opts)  # Prism's binary, found before any work (runtime/prism.py)
    validate(opts)
    return opts, PrepareConfig.from_options(opts)


def reusable_stage(opts, config: PrepareConfig, key: str) -> dict | None:
    """The marker of the output directory's dedup stage when `--resume` may reuse it: made
    with the same options and from the same input bytes (local files are hashed by a small
    job of their own; object stores' checksums are in the key already)."""
    out = config.output.output
    marker = read_marker(out)
    if marker is None or marker.get("key") != key:
        return None
    base = common_base(list(config.read.patterns))
    now = local_digests(opts, list(config.read.patterns), base, FileSystems.join(out, STAGE_DIR))
    then = {f["path"]: f["digest"] for f in marker["files"]}
    changed = sorted(p for p in set(now) | set(then) if now.get(p) != then.get(p))
    if changed:
        logging.warning(
            "not reusing the dedup stage: %d input file(s) changed since it was made (%s)",
            len(changed),
            ", ".join(changed[:5]),
        )
        return None
    return marker


def run(argv=None) -> dict:
    """Run the pipeline to completion as one Beam job; with `--resume` and a marker for the
    same options and inputs, the job starts from the materialized dedup stage instead of the
    input. Returns the manifest."""
    argv = sys.argv[1:] if argv is None else list(argv)
    opts, config = parse_options(argv)
    out = config.output.output
    check_inputs_exist(config.read.patterns)
    check_output_path(out)
    with OutputLock(out) as lock:
        prepare_output_dir(out, config.output.overwrite, config.output.resume)
        return run_locked(opts, config, argv, lock.run_id)


def run_locked(opts, config: PrepareConfig, argv: list[str], run_id: str) -> dict:
    """`run` once the output directory is ours."""
    out, started = config.output.output, time.time()
    inputs = input_metadata(config.read.patterns)
    choose_local_mode(opts, argv, sum(f["bytes"] or 0 for f in inputs))
    key = stage_key(
        config.options,
        {
            "schema_version": SCHEMA_VERSION,
            "near_dedup": config.near and config.near.settings(),
            "clean_tokenizer": config.tokens.clean_tokenizer,
        },
        inputs,
    )
    marker = reusable_stage(opts, config, key) if config.output.resume else None
    reuse = marker is not None
    pipeline = beam.Pipeline(options=opts)
    if reuse:
        logging.warning("reusing the dedup stage in %s", FileSystems.join(out, STAGE_DIR))
        stage = reuse_dedup_stage(pipeline, config, marker)
    else:
        delete_outputs(out, STAGE_OUTPUTS)
        stage = build_dedup_stage(pipeline, config, key, run_id)
    build_final_steps(pipeline, config, stage, run_id)
    with local_worker_env(opts):
        result = pipeline.run()
        result.wait_until_finish()
    manifest = read_manifest(out)
    if manifest is None or manifest.get("schema_version") != SCHEMA_VERSION:
        raise RuntimeError(f"the pipeline finished but {out}/{MANIFEST} is missing")
    if not reuse:  # the run's Beam counters, kept with the stage they describe
        write_marker(out, {**read_marker(out), "metrics": counter_values(result)})
    logging.info("prepared %s in %.1f s", out, time.time() - started)
    return manifest


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "-h" in argv or "--help" in argv:
        print(help_text())
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    tune_this_process()
    try:
        manifest = run(argv)
    except Exception as exc:  # a bad flag, or a tokenizer the sample cannot train
        line = user_error(exc) or (str(exc) if isinstance(exc, ValueError) else None)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 2
    for line in manifest.get("warnings", []):
        print(f"warning: {line}", file=sys.stderr)
    splits = manifest["splits"]
    print(
        f"prepared: train {splits['train']['rows']} docs / {splits['train']['tokens']} "
        f"tokens, val {splits['val']['rows']} docs / {splits['val']['tokens']} tokens"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
