"""Everything between the dedup stage and the shard writer: containment edges between
documents and the split by their components (split.py), the leakage report, and
decontamination against local evaluation sets.

    (spill files, removed ids) ─ ShardPrints ─┬─ ComponentSplits ─ moved (id, split)
                                              └─ with each split ─┬─ LeakageReport
                                                                  └─ contaminated train docs
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
from apache_beam.transforms.combiners import TupleCombineFn

from beam_jobs.overlap.config import DecontaminateConfig, OverlapConfig, add_overlap_args
from beam_jobs.overlap.evalsets import EvalIndex, read_items
from beam_jobs.overlap.prints import ShardPrints, found_positions
from beam_jobs.overlap.split import ComponentSplits, LeakageReport, counter, decide_splits
from beam_jobs.records import Duplicate, Event

__all__ = ["DecontaminateConfig", "Leakage", "OverlapConfig", "add_overlap_args", "build_index"]

CONTAMINATED = "contaminated"


def build_index(config: DecontaminateConfig | None) -> EvalIndex | None:
    """The evaluation sets' window index, read here, on the machine building the pipeline."""
    if config is None:
        return None
    return EvalIndex(
        {s.name: read_items(s.path) for s in config.sets}, config.width, words=config.words > 0
    )


def _contaminated_row(doc) -> Duplicate:
    set_name, item_id, share = doc.contam
    counter(f"contaminated_{set_name}").inc()
    return Duplicate(doc.id, f"{set_name}:{item_id}", CONTAMINATED, share, doc.file)


def _decontamination(_, found, removed, masked, index: EvalIndex, settings: dict) -> dict:
    sets = index.report(np.asarray(found, dtype=np.int64))
    for name, entry in sets.items():
        entry["documents_removed"] = int(removed.get(name, 0))
        if settings["mode"] == "mask":
            docs, chars = masked.get(name, (0, 0))
            entry["documents_masked"], entry["chars_masked"] = int(docs), int(chars)
    return {**settings, "sets": sets}


def _route(item):
    """A contaminated train document → its masked text on `masked`, or a `Duplicate` row."""
    doc = item[1]
    if doc.masked is None:
        yield _contaminated_row(doc)
    else:
        counter(f"masked_{doc.contam[0]}").inc()
        yield beam.pvalue.TaggedOutput("masked", doc)


class Leakage(beam.PTransform):
    """(`SpillFile`s, removed ids) → {'moved': (id, split) of the documents the components
    move (None when the containment split is off), 'duplicates': `Duplicate` rows of kind
    contaminated (None without evaluation sets), 'events': their `Event`s, 'masked': (id,
    (text, n_chars, n_tokens)) of the masked train documents (None without evaluation sets),
    'stats': one dict for stats.json (`leakage`, `decontamination`)}."""

    def __init__(
        self,
        output_dir: str,
        num_shards: int,
        overlap: OverlapConfig,
        decontaminate: DecontaminateConfig | None,
        index: EvalIndex | None,
        val_fraction: float,
        seed: str,
        tokenizer: str = "char",
    ):
        super().__init__()
        self.tokenizer = tokenizer
        self.output_dir, self.num_shards = output_dir, num_shards
        self.overlap, self.decontaminate, self.index = overlap, decontaminate, index
        self.val_fraction, self.seed = val_fraction, seed

    def expand(self, inputs):
        pipeline = inputs[0].pipeline
        has_val = self.val_fraction > 0
        mode = self.decontaminate.mode if self.decontaminate else "remove"
        docs = inputs | "ShardPrints" >> ShardPrints(
            self.output_dir, self.num_shards, self.overlap, self.index, mode, self.tokenizer
        )
        moved = None
        if self.overlap.split and has_val:
            moved = docs | "ComponentSplits" >> ComponentSplits(
                self.overlap, self.val_fraction, self.seed
            )
        with_split = decide_splits(docs, moved, self.val_fraction, self.seed)
        parts = {}
        if self.overlap.report and has_val:
            parts["leakage"] = with_split | "LeakageReport" >> LeakageReport(
                self.overlap.settings()
            )
        rows = events = masked = None
        if self.index is not None:
            rows, events, masked, parts["decontamination"] = self._decontaminate(with_split)
        stats = (
            pipeline
            | "StatsOnce" >> beam.Create([None])
            | "LeakageStats"
            >> beam.Map(
                lambda _, **parts: dict(parts),
                **{k: beam.pvalue.AsSingleton(v) for k, v in parts.items()},
            )
        )
        return {
            "moved": moved,
            "duplicates": rows,
            "events": events,
            "masked": masked,
            "stats": stats,
        }

    def _decontaminate(self, with_split):
        """(split, DocPrint) → (`Duplicate` rows of the removed train documents, their
        `Event`s, (id, (text, n_chars, n_tokens)) of the masked ones, the report)."""
        train_hits = with_split | "TrainHits" >> beam.Filter(
            lambda item: item[0] == "train" and item[1].contam is not None
        )
        routed = train_hits | "Route" >> beam.FlatMap(_route).with_outputs("masked", main="rows")
        rows = routed.rows
        events = rows | "ContaminatedEvents" >> beam.Map(
            lambda r: Event("duplicate", r.file, r.kind)
        )
        masked = routed.masked | "MaskedTexts" >> beam.Map(lambda d: (d.id, d.masked))
        found = (
            train_hits
            | "FoundWindows" >> beam.FlatMap(lambda i: found_positions(i[1]).tolist())
            | "DistinctFound" >> beam.Distinct()
        )
        removed = (
            rows
            | "BySet" >> beam.Map(lambda r: (r.duplicate_of.split(":", 1)[0], 1))
            | "RemovedPerSet" >> beam.CombinePerKey(sum)
        )
        masked_per_set = (
            routed.masked
            | "MaskedBySet" >> beam.Map(lambda d: (d.contam[0], (1, d.n_chars - d.masked[1])))
            | "MaskedPerSet" >> beam.CombinePerKey(TupleCombineFn(sum, sum))
        )
        report = (
            rows.pipeline
            | "DecontaminationOnce" >> beam.Create([None])
            | "DecontaminationReport"
            >> beam.Map(
                _decontamination,
                found=beam.pvalue.AsList(found),
                removed=beam.pvalue.AsDict(removed),
                masked=beam.pvalue.AsDict(masked_per_set),
                index=self.index,
                settings=self.decontaminate.settings(),
            )
        )
        return rows, events, masked, report
