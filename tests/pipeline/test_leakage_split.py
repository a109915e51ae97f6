"""The split by containment component, the leakage report and decontamination, end to end on
planted overlap: a document made of three others, one document inside another, the same
boilerplate in a thousand pages, a component too large for the validation split, and an
evaluation set holding a copy of a train page with its punctuation changed."""

import hashlib
import json
import random

import pyarrow.parquet as pq
import pytest
from conftest import write_jsonl

from beam_jobs.leakage import main as leakage_main
from beam_jobs.prepare import run
from beam_jobs.split.assign import assign_split

KANA = (
    "あいうえおかきくけこさしすせそたちつてとなにぬねの"
    "はひふへほまみむめもやゆよらりるれろわをん漢字文書"
)
VAL = 0.5
BOILER_PAGES = 1000


def prose(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(KANA) + ("。" if i % 23 == 22 else "") for i in range(n))


def ids_with(prefix: str, count: int, want) -> list[str]:
    """The first `count` ids PREFIX-k whose own-hash splits satisfy `want`."""
    k = 0
    while True:
        ids = [f"{prefix}-{k}-{j}" for j in range(count)]
        if want([assign_split(i, VAL) for i in ids]):
            return ids
        k += 1


def planted(rng: random.Random):
    docs, groups = [], {}
    a, b, c, d = ids_with("abc", 4, lambda s: len(set(s)) > 1)
    parts = [prose(rng, 1500) for _ in range(3)]
    docs += [{"id": i, "text": t} for i, t in zip((a, b, c), parts)]
    docs.append({"id": d, "text": "\n".join(parts)})
    groups["three_in_one"] = [a, b, c, d]
    inner, outer = ids_with("inner", 2, lambda s: len(set(s)) > 1)
    chapter = prose(rng, 1200)
    docs += [
        {"id": inner, "text": chapter},
        {"id": outer, "text": prose(rng, 2000) + chapter + prose(rng, 2000)},
    ]
    groups["inside"] = [inner, outer]
    # Larger than the val split allows: 0.1 x 0.5 x ~600k characters.
    big, part = ids_with("big", 2, lambda s: s[0] == "val")
    whole = prose(rng, 60000)
    docs += [{"id": big, "text": whole}, {"id": part, "text": whole[20000:30000]}]
    groups["too_big"] = [big, part]
    boiler = prose(rng, 150)
    pages = [
        {"id": f"page-{k:04d}", "text": prose(rng, 300) + "\n" + boiler}
        for k in range(BOILER_PAGES)
    ]
    return docs + pages, groups, pages


def split_of(out) -> dict:
    return {
        i: split
        for split in ("train", "val")
        for i in pq.read_table(out / split, columns=["id"])["id"].to_pylist()
    }


def prepare(inp, out, *extra):
    return run(
        [
            "--input",
            str(inp),
            "--output",
            str(out),
            "--runner",
            "FnApiRunner",
            "--num-shards",
            "2",
            "--val-fraction",
            str(VAL),
            "--no-report",
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("leakage")
    rng = random.Random(7)
    docs, groups, pages = planted(rng)
    inp = write_jsonl(root / "in.jsonl.gz", docs)
    x = next(p for p in pages if assign_split(p["id"], VAL) == "train")
    copy = x["text"][:300].replace("。", "！")  # the page's own part, other punctuation
    assert copy != x["text"][:300]
    evalset = root / "bench.jsonl"
    evalset.write_text(
        json.dumps({"id": "copy", "question": copy}, ensure_ascii=False)
        + "\n"
        + json.dumps({"id": "fresh", "question": prose(rng, 400)}, ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    # The boilerplate's fingerprints are shared by more pages than the group limit.
    flags = ["--decontaminate", f"bench={evalset}", "--overlap-max-group", "500"]
    off, on = root / "off", root / "on"
    prepare(inp, off, "--no-containment-split", "--overlap-max-group", "500")
    prepare(inp, on, *flags)
    return {
        "root": root,
        "input": inp,
        "groups": groups,
        "x": x["id"],
        "off": off,
        "on": on,
        "flags": flags,
    }


def test_planted_groups_share_a_split(corpus):
    on, off = split_of(corpus["on"]), split_of(corpus["off"])
    groups = corpus["groups"]
    for name in ("three_in_one", "inside"):
        members = groups[name]
        assert len({on[m] for m in members}) == 1, name
        assert on[members[0]] == assign_split(min(members), VAL)
        assert len({off[m] for m in members}) == 2, name  # apart by their own hashes
    assert {on[m] for m in groups["too_big"]} == {"train"}  # its root's hash says val
    pages = [i for i in on if i.startswith("page-")]
    # The boilerplate joins nothing (its fingerprints are giant groups): the pages keep their
    # own hash's split, but for the few that also share a window across the boilerplate's
    # edge (their last characters before it are the same) and so contain one another.
    assert sum(on[i] == assign_split(i, VAL) for i in pages) > 0.95 * len(pages)
    assert 400 < sum(on[i] == "val" for i in pages) < 600


def test_report_finds_the_planted_leaks_and_none_after(corpus):
    before = json.loads((corpus["off"] / "stats.json").read_text())["leakage"]
    after = json.loads((corpus["on"] / "stats.json").read_text())["leakage"]
    worst_before = {w["id"] for w in before["worst"] if w["containment"] > 0.9}
    planted = {m for g in corpus["groups"].values() for m in g}
    assert worst_before & planted and before["above_90"] >= 2
    assert after["above_50"] == 0 and after["above_90"] == 0
    # Pages in val share their boilerplate (a quarter of their windows) with train pages.
    assert 0.1 < after["share_in_train"] < 0.4
    marker = json.loads((corpus["on"] / "_stages/dedup/stage.json").read_text())
    overlap = marker["metrics"]["overlap"]
    assert overlap["giant_groups"] > 0 and overlap["components_forced_train"] == 1


def test_cli_measures_the_same_as_the_pipeline(corpus, tmp_path, capsys):
    report = tmp_path / "r.json"
    assert leakage_main([str(corpus["on"]), "--sample", "16", "--json", str(report)]) == 0
    cli = json.loads(report.read_text())["leakage"]
    pipeline = json.loads((corpus["on"] / "stats.json").read_text())["leakage"]
    for name in ("documents", "windows", "in_train", "above_50", "above_90"):
        assert cli[name] == pipeline[name], name
    assert leakage_main([str(corpus["off"])]) == 0  # exact, every window
    assert "found in train" in capsys.readouterr().out
    assert leakage_main([str(tmp_path / "nothing")]) == 2


def test_decontamination_removes_the_copy_with_changed_punctuation(corpus):
    on = corpus["on"]
    assert corpus["x"] not in split_of(on) and corpus["x"] in split_of(corpus["off"])
    stats = json.loads((on / "stats.json").read_text())
    assert stats["duplicates_by_kind"]["contaminated"] == 1 and stats["identity_holds"]
    bench = stats["decontamination"]["sets"]["bench"]
    assert bench["documents_removed"] == 1 and bench["items"] == 2
    assert bench["items_above_90"] == 1 and bench["worst"][0]["id"] == "copy"
    rows = [r for r in pq.read_table(on / "duplicates").to_pylist() if r["kind"] == "contaminated"]
    assert [(r["id"], r["duplicate_of"]) for r in rows] == [(corpus["x"], "bench:copy")]
    manifest = json.loads((on / "manifest.json").read_text())
    assert "duplicates/contaminated-00000-of-00001.parquet" in manifest["duplicates"]["shards"]
    assert manifest["duplicates"]["rows"] == stats["duplicates"]


def test_resume_redoes_the_split_with_new_flags_byte_identically(corpus):
    off = corpus["off"]
    prepare(corpus["input"], off, "--overwrite", "--resume", *corpus["flags"])

    def digests(out):
        return {
            str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for sub in ("train", "val", "duplicates")
            for p in sorted((out / sub).glob("*"))
        }

    assert digests(off) == digests(corpus["on"])
    prepare(
        corpus["input"],
        off,
        "--overwrite",
        "--resume",
        "--no-containment-split",
        "--overlap-max-group",
        "500",
    )
    assert not (off / "duplicates/contaminated-00000-of-00001.parquet").exists()


def test_mask_mode_cuts_the_copied_span_and_keeps_the_rest(tmp_path):
    rng = random.Random(11)
    before, copied, after = prose(rng, 400), prose(rng, 300), prose(rng, 400)
    doc_id = ids_with("masked", 1, lambda s: s == ["train"])[0]
    others = [{"id": f"other-{k}", "text": prose(rng, 500)} for k in range(20)]
    inp = write_jsonl(
        tmp_path / "in.jsonl.gz", [{"id": doc_id, "text": before + copied + after}, *others]
    )
    evalset = tmp_path / "bench.txt"
    evalset.write_text(copied.replace("。", "．") + "\n", encoding="utf-8")
    out = tmp_path / "out"
    prepare(inp, out, "--decontaminate", f"bench={evalset}", "--decontaminate-mode", "mask")
    rows = {r["id"]: r for r in pq.read_table(out / "train").to_pylist()}
    text = rows[doc_id]["text"]
    assert copied not in text and text.startswith(before[:300]) and text.endswith(after[-300:])
    assert rows[doc_id]["n_chars"] == len(text) < len(before + copied + after)
    stats = json.loads((out / "stats.json").read_text())
    bench = stats["decontamination"]["sets"]["bench"]
    assert bench["documents_masked"] == 1 and bench["documents_removed"] == 0
    assert 300 <= bench["chars_masked"] < 400  # the copy, and windows overlapping its edges
    assert "contaminated" not in stats["duplicates_by_kind"] and stats["identity_holds"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"]["train"]["tokens"] == sum(r["n_tokens"] for r in rows.values())
