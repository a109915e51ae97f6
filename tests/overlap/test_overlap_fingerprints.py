"""Window fingerprints, containment estimates, evaluation-set reading and the report's
arithmetic (pure functions, no Beam)."""

import gzip
import json
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from beam_jobs.overlap import report
from beam_jobs.overlap.evalsets import EvalIndex, read_items
from beam_jobs.overlap.fingerprints import (
    as_keys,
    containment,
    fingerprints,
    from_bytes,
    to_bytes,
    window_hashes,
)
from beam_jobs.text.normalize import dedup_key

KANA = (
    "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん"
)


def prose(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(KANA) + ("。" if rng.random() < 0.05 else "") for _ in range(n))


def test_equal_windows_hash_equal_and_distinct_windows_differ():
    rng = random.Random(1)
    text = prose(rng, 3000) * 2
    hashes = window_hashes(text, 20)
    assert len(hashes) == len(text) - 19
    by_window = {}
    for i, h in enumerate(hashes.tolist()):
        by_window.setdefault(text[i : i + 20], set()).add(h)
    assert all(len(v) == 1 for v in by_window.values())  # a window has one hash
    assert len({next(iter(v)) for v in by_window.values()}) == len(by_window)  # no collision
    assert len(window_hashes("short", 20)) == 0


def test_the_same_window_is_selected_in_every_document():
    rng = random.Random(2)
    shared = prose(rng, 2000)
    a, b = prose(rng, 1000) + shared, shared + prose(rng, 3000)
    fa, fb, fs = (fingerprints(t, 50, 8) for t in (a, b, shared))
    assert set(fs.tolist()) <= set(fa.tolist()) & set(fb.tolist())
    assert len(fs) > 100  # about 1/8 of the windows


def test_containment_estimate_is_close_to_the_exact_share():
    rng = random.Random(3)
    inner = prose(rng, 4000)
    outer = prose(rng, 6000) + inner + prose(rng, 6000)
    exact = [fingerprints(t, 50, 1) for t in (inner, outer)]
    sampled = [fingerprints(t, 50, 16) for t in (inner, outer)]

    def share(x, y):
        return containment(len(np.intersect1d(x, y)), len(x))

    assert share(*exact) == 1.0 and share(*sampled) == 1.0  # inner lies inside outer
    true = share(exact[1], exact[0])  # outer's share in inner: about 4/16
    assert abs(share(sampled[1], sampled[0]) - true) < 0.05


def test_the_dedup_key_normalization_applies():
    text = "ＡＢＣ、これはテスト。次の文です！"
    variant = "abc,これはテスト.次の文です!"
    assert dedup_key(text) == dedup_key(variant)
    assert np.array_equal(fingerprints(text, 8, 1), fingerprints(variant, 8, 1))


def test_bytes_round_trip_and_signed_keys():
    prints = fingerprints(prose(random.Random(4), 5000), 50, 4)
    assert np.array_equal(from_bytes(to_bytes(prints)), prints)
    keys = as_keys(to_bytes(prints))
    assert all(-(2**63) <= k < 2**63 for k in keys)
    assert [k % 2**64 for k in keys] == prints.tolist()


def test_word_windows_for_space_separated_text():
    a = window_hashes(dedup_key("The quick brown fox jumps over the lazy dog"), 3, words=True)
    b = window_hashes(dedup_key("the QUICK brown fox, jumps over"), 3, words=True)
    assert len(a) == 7 and len(b) == 4
    assert set(b.tolist()) <= set(a.tolist())


def test_evaluation_sets_in_every_format(tmp_path):
    rows = [{"id": "q1", "question": "問題の文", "choices": ["甲", "乙"]}, {"question": "二問目"}]
    (tmp_path / "e.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n", encoding="utf-8"
    )
    with gzip.open(tmp_path / "e.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write(json.dumps(rows[0], ensure_ascii=False) + "\n")
    pq.write_table(pa.Table.from_pylist([{"id": "p1", "text": "本文"}]), tmp_path / "e.parquet")
    (tmp_path / "e.txt").write_text("一行目\n\n三行目\n", encoding="utf-8")
    assert read_items(str(tmp_path / "e.jsonl")) == [("q1", "問題の文\n甲\n乙"), ("2", "二問目")]
    assert read_items(str(tmp_path / "e.jsonl.gz")) == [("q1", "問題の文\n甲\n乙")]
    assert read_items(str(tmp_path / "e.parquet")) == [("p1", "本文")]
    assert read_items(str(tmp_path / "e.txt")) == [("1", "一行目"), ("3", "三行目")]
    (tmp_path / "bad.jsonl").write_text("{not json\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        read_items(str(tmp_path / "bad.jsonl"))


def test_eval_index_hits_and_report():
    rng = random.Random(5)
    items = [("a", prose(rng, 400)), ("b", prose(rng, 400)), ("tiny", "短い")]
    index = EvalIndex({"set": items}, 50)
    doc = prose(rng, 500) + items[1][1][:200] + prose(rng, 500)
    found, windows = index.hits(dedup_key(doc))
    assert len(found) and windows > len(found)
    assert index.first_item(found) == ("set", "b")
    entry = index.report(found)["set"]
    assert entry["items"] == 3 and entry["items_too_short"] == 1
    assert entry["items_above_50"] == 0 and entry["worst"][0]["id"] == "b"
    assert 0.3 < entry["worst"][0]["containment"] < 0.5  # 200 of 400 characters
    everything, _ = index.hits(dedup_key(items[1][1]))
    assert index.report(everything)["set"]["items_above_90"] == 1


def test_report_arithmetic_adds_and_merges():
    one = report.add(report.new(), "d1", 6, 10, 100)
    two = report.add(report.add(report.new(), "d2", 10, 10, 50), "d3", 0, 0, 5)
    out = report.finish(report.merge([one, two]), {})
    assert out["documents"] == 3 and out["measured"] == 2
    assert out["windows"] == 20 and out["in_train"] == 16 and out["share_in_train"] == 0.8
    assert out["above_50"] == 2 and out["above_90"] == 1
    assert out["above_90_chars"] == 50 and out["above_90_share_of_chars"] == 50 / 155
    assert [w["id"] for w in out["worst"]] == ["d2", "d1"]


def test_a_small_validation_split_is_warned_about():
    stats = {"splits": {"train": {"chars": 990}, "val": {"chars": 10}}, "leakage": {}}
    assert "1.00% of the characters" in report.small_val_warning(stats, 0.05)
    stats["splits"]["val"]["chars"] = 40
    assert report.small_val_warning(stats, 0.05) is None


def test_bad_flags_are_one_line_errors(tmp_path):
    from argparse import Namespace

    from beam_jobs.overlap.config import DecontaminateConfig, OverlapConfig

    for bad in ({"threshold": 0}, {"sample": 0}, {"max_group": 1}, {"width": 4}):
        with pytest.raises(ValueError, match="^--"):
            OverlapConfig(**bad)
    (tmp_path / "e.txt").write_text("x\n", encoding="utf-8")
    (tmp_path / "bad.jsonl").write_text("{not json\n", encoding="utf-8")

    def opts(specs, **kw):
        base = {"decontaminate_chars": 50, "decontaminate_words": 0, "decontaminate_mode": "remove"}
        return Namespace(decontaminate=specs, **{**base, **kw})

    assert DecontaminateConfig.from_options(opts([])) is None
    good = DecontaminateConfig.from_options(opts([f"e={tmp_path / 'e.txt'}"]))
    assert good.sets[0].name == "e" and len(good.sets[0].sha256) == 64
    for specs, kw in (
        (["nope"], {}),
        (["a:b=" + str(tmp_path / "e.txt")], {}),
        (["a=/no/such/file"], {}),
        ([f"e={tmp_path / 'e.txt'}", f"e={tmp_path / 'e.txt'}"], {}),
        ([f"e={tmp_path / 'e.txt'}"], {"decontaminate_mode": "mask", "decontaminate_words": 3}),
        ([f"bad={tmp_path / 'bad.jsonl'}"], {}),
    ):
        with pytest.raises(ValueError, match="^--decontaminate"):
            DecontaminateConfig.from_options(opts(specs, **kw))
