"""The two steps that close a run, each once, after everything they describe is written.

Both run on a single element with everything else as side inputs, so a runner starts them only
when all of those are complete: `StageDone` writes the dedup stage's marker, `Finish` writes
stats.json, the report and last the manifest.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from beam_jobs.io.fs import write_json
from beam_jobs.io.spill import remove_unreferenced
from beam_jobs.outputs.lock import check_lock
from beam_jobs.outputs.manifest import build_manifest, write_manifest
from beam_jobs.outputs.report import draw_report
from beam_jobs.outputs.stages import SPILL_DIR, decode_counter, encode_counter, write_marker
from beam_jobs.outputs.stats import finalize
from beam_jobs.overlap.report import small_val_warning
from beam_jobs.tokens.manifest import token_manifest, token_stats


def _rows(records, key: str = "path") -> list[dict]:
    """Records (NamedTuples) as JSON-able dicts, in a deterministic order."""
    return [r._asdict() for r in sorted(records, key=lambda r: getattr(r, key))]


class StageDone(beam.DoFn):
    """Writes the dedup stage's marker once all its outputs are written, after removing any
    spill file that no finished bundle referenced."""

    def __init__(self, output_dir: str, key: str, run_id: str):
        self.output_dir, self.key, self.run_id = output_dir, key, run_id

    def process(self, _, events, files, spill_files, duplicate_shards, rejected_shards):
        check_lock(self.output_dir, self.run_id)
        remove_unreferenced(self.output_dir, SPILL_DIR, {f.path for f in spill_files})
        marker = {
            "stage": "dedup",
            "key": self.key,
            "events": encode_counter(events),
            "files": _rows(files),
            "spill_files": _rows(spill_files),
            "duplicate_shards": _rows(duplicate_shards),
            "rejected_shards": _rows(rejected_shards),
        }
        write_marker(self.output_dir, marker)
        yield marker


class Finish(beam.DoFn):
    """stats.json, the report, and last the manifest, from the counts of the final steps and
    the dedup stage's marker."""

    def __init__(self, output_dir: str, options: dict, settings: dict, report: bool, run_id: str):
        self.output_dir, self.options, self.settings = output_dir, options, settings
        self.report, self.run_id = report, run_id

    def process(
        self,
        _,
        kept_events,
        stage,
        vocab,
        doc_shards,
        ngram_shards,
        leakage=None,
        contaminated_shards=(),
        tokenizer=None,
        token_files=(),
    ):
        check_lock(self.output_dir, self.run_id)
        stats = finalize(kept_events + decode_counter(stage["events"]))
        stats.update(leakage or {})  # the leakage report, decontamination (overlap/)
        small = small_val_warning(stats, self.options.get("val_fraction") or 0)
        if small and self.options.get("containment_split"):
            stats["warnings"].append(small)
        if tokenizer is not None:  # a model with ids: its entries (beam_jobs.tokens.manifest)
            stats = token_stats(stats, tokenizer)
        write_json(FileSystems.join(self.output_dir, "stats.json"), stats)
        report = draw_report(self.output_dir, stats, vocab) if self.report else []
        manifest = build_manifest(
            options=self.options,
            settings=self.settings,
            files=stage["files"],
            doc_shards=_rows(doc_shards),
            ngram_shards=_rows(ngram_shards),
            duplicate_shards=stage["duplicate_shards"] + _rows(contaminated_shards),
            rejected_shards=stage["rejected_shards"],
            report=report,
        )
        if tokenizer is not None:
            manifest.update(token_manifest(tokenizer, token_files, self.options))
        manifest["warnings"] = stats["warnings"]
        check_lock(self.output_dir, self.run_id)  # the last moment another run could have won
        write_manifest(self.output_dir, manifest)
        yield manifest
