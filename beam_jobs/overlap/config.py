"""Settings of the containment-aware split, the leakage report and decontamination: their
flags and one validated config each (no Beam here; docs/leakage.md)."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os

from beam_jobs.overlap.evalsets import read_items
from beam_jobs.runtime.flags import BoolFlag

DEFAULT_WINDOW = 50
DEFAULT_SAMPLE = 16
DEFAULT_THRESHOLD = 0.05
DEFAULT_MAX_GROUP = 1000
DEFAULT_MAX_VAL_COMPONENT = 0.1
DEFAULT_CC_ROUNDS = 4
DECONTAMINATE_MODES = ("remove", "mask")


@dataclasses.dataclass(frozen=True)
class OverlapConfig:
    """`split`: documents joined by containment edges share a split; `report`: the leakage
    report in stats.json. Fingerprints: windows of `width` characters of the dedup key, those
    whose hash is 0 modulo `sample`."""

    split: bool = True
    report: bool = True
    width: int = DEFAULT_WINDOW
    sample: int = DEFAULT_SAMPLE
    threshold: float = DEFAULT_THRESHOLD
    max_group: int = DEFAULT_MAX_GROUP
    max_val_component: float = DEFAULT_MAX_VAL_COMPONENT
    cc_rounds: int = DEFAULT_CC_ROUNDS

    def __post_init__(self):
        if self.width < 8:
            raise ValueError(f"--overlap-window must be at least 8 characters, got {self.width}")
        if self.sample < 1:
            raise ValueError(f"--overlap-sample must be at least 1, got {self.sample}")
        if not 0 < self.threshold <= 1:
            raise ValueError(f"--containment-threshold must be in (0, 1], got {self.threshold}")
        if self.max_group < 2:
            raise ValueError(f"--overlap-max-group must be at least 2, got {self.max_group}")
        if not 0 < self.max_val_component <= 1:
            raise ValueError(f"--max-val-component must be in (0, 1], got {self.max_val_component}")
        if self.cc_rounds < 1:
            raise ValueError(f"--overlap-cc-rounds must be at least 1, got {self.cc_rounds}")

    @property
    def active(self) -> bool:
        return self.split or self.report

    @classmethod
    def from_options(cls, opts) -> OverlapConfig:
        return cls(
            opts.containment_split,
            opts.leakage_report,
            opts.overlap_window,
            opts.overlap_sample,
            opts.containment_threshold,
            opts.overlap_max_group,
            opts.max_val_component,
            opts.overlap_cc_rounds,
        )

    def settings(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class EvalSet:
    name: str
    path: str
    sha256: str


@dataclasses.dataclass(frozen=True)
class DecontaminateConfig:
    """Evaluation sets whose text is removed from train: a train document sharing a window of
    `chars` characters (or `words` words when `words` > 0) of the dedup key with an item."""

    sets: tuple[EvalSet, ...]
    mode: str = "remove"
    chars: int = DEFAULT_WINDOW
    words: int = 0

    @classmethod
    def from_options(cls, opts) -> DecontaminateConfig | None:
        if not opts.decontaminate:
            return None
        sets, seen = [], set()
        for spec in opts.decontaminate:
            name, eq, path = spec.partition("=")
            if not eq or not name or not path or ":" in name:
                raise ValueError(f"--decontaminate {spec!r}: give NAME=PATH (NAME without ':')")
            if name in seen:
                raise ValueError(f"--decontaminate: the set name {name!r} is given twice")
            if not os.path.isfile(path):
                raise ValueError(f"--decontaminate {name}: no such local file {path}")
            seen.add(name)
            try:  # an unreadable set fails here, before any work
                read_items(path)
            except (ValueError, OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"--decontaminate {name}: {exc}") from None
            sets.append(EvalSet(name, os.path.abspath(path), _sha256(path)))
        if opts.decontaminate_chars < 8:
            raise ValueError("--decontaminate-chars must be at least 8")
        if opts.decontaminate_words < 0:
            raise ValueError("--decontaminate-words must not be negative")
        if opts.decontaminate_mode == "mask" and opts.decontaminate_words:
            raise ValueError(
                "--decontaminate-mode mask matches character windows: drop --decontaminate-words"
            )
        return cls(
            tuple(sets), opts.decontaminate_mode, opts.decontaminate_chars, opts.decontaminate_words
        )

    @property
    def width(self) -> int:
        return self.words or self.chars

    def settings(self) -> dict:
        return {
            "sets": [dataclasses.asdict(s) for s in self.sets],
            "mode": self.mode,
            "chars": self.chars,
            "words": self.words,
        }


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def add_overlap_args(parser: argparse.ArgumentParser) -> None:
    """Register the split-by-containment, leakage-report and decontamination flags."""
    g = parser.add_argument_group(
        "leakage: containment-aware split, report, decontamination (docs/leakage.md)"
    )
    g.add_argument(
        "--containment-split",
        dest="containment_split",
        action=BoolFlag,
        default=True,
        help="documents that contain one another's text (estimated containment "
        "at least --containment-threshold) go to the same split, decided by "
        "the hash of their component's smallest id",
    )
    g.add_argument(
        "--leakage-report",
        dest="leakage_report",
        action=BoolFlag,
        default=True,
        help="measure the share of validation windows found in train (stats.json)",
    )
    g.add_argument(
        "--containment-threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help="estimated |A∩B|/|A| (A in B or B in A) that joins two documents",
    )
    g.add_argument(
        "--overlap-window",
        type=int,
        default=DEFAULT_WINDOW,
        help="characters per window of the dedup key",
    )
    g.add_argument(
        "--overlap-sample",
        type=int,
        default=DEFAULT_SAMPLE,
        help="keep the windows whose hash is 0 modulo this (1: every window)",
    )
    g.add_argument(
        "--overlap-max-group",
        type=int,
        default=DEFAULT_MAX_GROUP,
        help="a fingerprint shared by more documents than this (boilerplate) joins "
        "nothing; counted as giant_groups",
    )
    g.add_argument(
        "--max-val-component",
        type=float,
        default=DEFAULT_MAX_VAL_COMPONENT,
        help="a component holding more characters than this share of the expected "
        "validation characters (val fraction x all) goes to train",
    )
    g.add_argument(
        "--overlap-cc-rounds",
        type=int,
        default=DEFAULT_CC_ROUNDS,
        help="large-star/small-star rounds of the components",
    )
    g.add_argument(
        "--decontaminate",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="an evaluation set (local JSON Lines, Parquet or text file, .gz too) "
        "whose text is removed from train; repeat for several",
    )
    g.add_argument(
        "--decontaminate-mode",
        choices=DECONTAMINATE_MODES,
        default="remove",
        help="remove: drop the train document (a duplicates/ row of kind "
        "contaminated); mask: cut the matching spans out of its text (a "
        "document left empty is removed)",
    )
    g.add_argument(
        "--decontaminate-chars",
        type=int,
        default=DEFAULT_WINDOW,
        help="characters of the dedup key a train document must share with an item",
    )
    g.add_argument(
        "--decontaminate-words",
        type=int,
        default=0,
        help="for space-separated languages: match windows of this many words "
        "instead of characters (0: characters)",
    )
