"""Issue 18 item 14: with --decode-errors replace, mojibake (U+FFFD-dense text) passed every
filter. It is filtered now as `replacement_chars`; stray replacement characters are kept."""

import gzip
import json

import pytest
from conftest import PROSE, SAMPLE

from beam_jobs.text.filters import FilterConfig, filter_reason, resolve_scripts
from beam_jobs.text.normalize import normalize_text

OFF = FilterConfig(max_replacement_fraction=1)


def sample_texts(limit: int = 60) -> list[str]:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle][:limit]


def misread(text: str, encoding: str) -> str:
    """`text` saved in `encoding` and read back as UTF-8 with bad bytes replaced."""
    return normalize_text(text.encode(encoding, "replace").decode("utf-8", "replace"))


@pytest.mark.parametrize("encoding", ["cp932", "euc-jp", "utf-16-le"])
def test_mojibake_is_filtered(encoding):
    good = [t for t in sample_texts() if filter_reason(normalize_text(t), FilterConfig()) is None]
    bad = [misread(t, encoding) for t in good]
    assert len(bad) >= 40
    # The defect: for any script (a non-Japanese corpus) mojibake passed every other filter,
    # and with the Japanese default a few pages still did.
    any_script = resolve_scripts("any")
    passed = [
        filter_reason(t, FilterConfig(scripts=any_script, max_replacement_fraction=1)) for t in bad
    ]
    assert passed.count(None) >= len(bad) // 2
    for config in (FilterConfig(), FilterConfig(scripts=any_script)):
        assert {filter_reason(t, config) for t in bad} == {"replacement_chars"}


def test_stray_replacement_characters_are_kept():
    text = next(
        t
        for t in map(normalize_text, sample_texts())
        if filter_reason(t, FilterConfig()) is None and len(t) > 1000
    )
    text = text[:500] + "\ufffd" + text[500:]
    assert filter_reason(text, FilterConfig()) is None
    assert filter_reason(text, FilterConfig(max_replacement_fraction=0)) == "replacement_chars"
    dense = PROSE + "\ufffd" * 5
    assert filter_reason(dense, FilterConfig()) == "replacement_chars"
    assert filter_reason(dense, OFF) is None
