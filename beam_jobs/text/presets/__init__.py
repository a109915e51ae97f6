"""Opt-in quality presets (`--quality-preset NAME`), applied after the default filters.

A preset is a pure function text -> reason or None, and the tuple of reasons it can return
(counter names and `stats.json` keys, each prefixed by the preset's name). Presets are for web
text: they reject much legitimate prose of other kinds (long literary sentences, manuals; see
each module), so none is on by default.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from beam_jobs.text.presets.swallow import SWALLOW_REASONS, swallow_reason


class Preset(NamedTuple):
    reasons: tuple[str, ...]
    reason: Callable[[str], str | None]


def _hojichar() -> Preset:
    # Imported on first use: the hojichar package is needed only by those who pick it.
    from beam_jobs.text.presets.hojichar_preset import HOJICHAR_REASONS, hojichar_reason

    return Preset(HOJICHAR_REASONS, hojichar_reason)


_PRESETS: dict[str, Callable[[], Preset]] = {
    "swallow": lambda: Preset(SWALLOW_REASONS, swallow_reason),
    "hojichar": _hojichar,
}
PRESET_NAMES = ("none", *_PRESETS)


def get_preset(name: str) -> Preset | None:
    """The preset called `name`, None for "none"; ValueError (one line) for an unknown name."""
    if name == "none":
        return None
    if name not in _PRESETS:
        raise ValueError(f"unknown quality preset {name!r}: use one of {', '.join(PRESET_NAMES)}")
    return _PRESETS[name]()


def preset_reason(text: str, name: str) -> str | None:
    """The reason preset `name` rejects `text` for, or None (also for "none")."""
    preset = get_preset(name)
    return preset.reason(text) if preset else None
