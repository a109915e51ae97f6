"""`--decontaminate-mode mask`: cut out of a train document the spans of its text whose dedup
key windows occur in an evaluation set, keeping the rest (pure, no Beam; the shard writer
applies the result with `apply_masks`).

Matching is on the dedup key, so each key character is traced back to the text character it
came from (the key's rules applied one character at a time, whitespace folded as the key
folds it). Where that per-character key is not the key itself (a rule that depends on its
neighbours, such as NFKC composing a base and a combining mark the cleaned text left apart),
`mask` returns None and the document is removed instead.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pyarrow as pa

from beam_jobs.overlap.evalsets import EvalIndex
from beam_jobs.overlap.fingerprints import window_hashes
from beam_jobs.text.normalize import _CONTROL_RE, _PUNCT_RE, dedup_key


def key_with_offsets(text: str) -> tuple[str, list[int]]:
    """The dedup key built character by character, and for each of its characters the index
    of the text character it came from."""
    out, offsets, space = [], [], True
    for i, c in enumerate(text):
        piece = _PUNCT_RE.sub(" ", _CONTROL_RE.sub("", unicodedata.normalize("NFKC", c)).lower())
        for ch in piece:
            if ch.isspace():
                if not space:
                    out.append(" ")
                    offsets.append(i)
                space = True
            else:
                out.append(ch)
                offsets.append(i)
                space = False
    if out and out[-1] == " ":
        out.pop()
        offsets.pop()
    return "".join(out), offsets


def mask(text: str, index: EvalIndex) -> tuple[str, int] | None:
    """(text without the spans found in the evaluation sets, characters cut); None where the
    key cannot be traced back to the text."""
    key, offsets = key_with_offsets(text)
    if key != dedup_key(text):
        return None
    width = index.width
    hashes = window_hashes(key, width)
    if not len(hashes) or not len(index.hashes):
        return text, 0
    pos = np.minimum(np.searchsorted(index.hashes, hashes), len(index.hashes) - 1)
    starts = np.flatnonzero(index.hashes[pos] == hashes)
    if not len(starts):
        return text, 0
    depth = np.zeros(len(key) + 1, dtype=np.int64)
    np.add.at(depth, starts, 1)
    np.add.at(depth, starts + width, -1)
    covered = np.cumsum(depth)[:-1] > 0
    edges = np.flatnonzero(np.diff(np.concatenate(([0], covered.astype(np.int8), [0]))))
    keep, last = [], 0
    for start, end in zip(edges[::2], edges[1::2]):  # covered key runs [start, end)
        lo, hi = offsets[start], offsets[end - 1] + 1
        keep.append(text[last:lo])
        last = hi
    keep.append(text[last:])
    masked = "".join(keep)
    return masked, len(text) - len(masked)


def apply_masks(table: pa.Table, masked: dict) -> pa.Table:
    """A shard's table with the masked documents' text, n_chars and n_tokens replaced
    (`masked`: id → (text, n_chars, n_tokens))."""
    ids = table["id"].to_pylist()
    rows = [i for i, doc_id in enumerate(ids) if doc_id in masked]
    if not rows:
        return table
    columns = {name: table[name].to_pylist() for name in ("text", "n_chars", "n_tokens")}
    for i in rows:
        for name, value in zip(("text", "n_chars", "n_tokens"), masked[ids[i]]):
            columns[name][i] = value
    for name, values in columns.items():
        position = table.schema.get_field_index(name)
        table = table.set_column(
            position, table.schema.field(name), pa.array(values, type=table.schema.field(name).type)
        )
    return table
