"""The perplexity filter: a saved Kneser-Ney model scores documents on the workers, a
`perplexity` column, --max/--min-perplexity filtered with their reasons and counted."""

import gzip
import json
import math
import subprocess
import sys

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_jobs.prepare import main, run
from beam_jobs.records import Document
from beam_jobs.text.perplexity import NgramScorer
from beam_jobs.text.perplexity_filter import (
    ABOVE_MAX,
    BELOW_MIN,
    PerplexityConfig,
    ScorePerplexity,
)
from lm.ngram import main as ngram_main
from tests.lm_fixtures import random_texts, write_data_dir

GOOD = ["あいうえおかきくけこ", "かきくけこあいう", "さしすせそあいうえお"]
ODD = ["zzqxj vvkp wwq", "xqz 123 qqq zzz"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("ref")
    data = write_data_dir(root / "data", random_texts(80, seed=1) + GOOD * 5, GOOD, order=3)
    path = str(root / "kn3.npz")
    assert ngram_main(["--data", data, "--save-model", path, "--no-eval"]) == 0
    return path


def doc(i, text):
    return Document(f"d{i}", text, text, len(text), len(text), "s", "f.jsonl", i)


def test_documents_get_their_perplexity_and_the_bounds_filter(model):
    scorer = NgramScorer.load(model)
    ppl = {t: scorer.perplexity(t) for t in GOOD + ODD}
    assert max(ppl[t] for t in GOOD) < min(ppl[t] for t in ODD)  # the model knows kana
    hi = (max(ppl[t] for t in GOOD) + min(ppl[t] for t in ODD)) / 2
    lo = min(ppl[t] for t in GOOD) * 1.0001
    config = PerplexityConfig(model, max_perplexity=hi, min_perplexity=lo)
    low = min(GOOD, key=ppl.get)
    with TestPipeline(runner="FnApiRunner") as p:
        out = (
            p | beam.Create([doc(i, t) for i, t in enumerate(GOOD + ODD)]) | ScorePerplexity(config)
        )
        assert_that(
            out["docs"] | beam.Map(lambda d: (d.text, round(d.perplexity, 9))),
            equal_to([(t, round(ppl[t], 9)) for t in GOOD if t != low]),
            label="kept",
        )
        assert_that(
            out["filtered"] | beam.Map(lambda f: (f.id, f.reason)),
            equal_to(
                [(f"d{GOOD.index(low)}", BELOW_MIN)]
                + [(f"d{len(GOOD) + i}", ABOVE_MAX) for i in range(len(ODD))]
            ),
            label="filtered",
        )


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--max-perplexity", "50"], "need --perplexity-model"),
        (["--perplexity-model", "MODEL", "--max-perplexity", "0.5"], "at least 1"),
        (
            ["--perplexity-model", "MODEL", "--min-perplexity", "9", "--max-perplexity", "9"],
            "must be below",
        ),
        (["--perplexity-model", "MODEL", "--max-perplexity", "nan"], "finite"),
        (["--perplexity-model", "/no/such/model.npz"], "no such file"),
        (["--perplexity-model", "NOTMODEL"], "unreadable n-gram model"),
    ],
)
def test_bad_flags_are_one_line_errors(tmp_path, capsys, model, flags, message):
    (tmp_path / "in.jsonl").write_text(json.dumps({"text": "あいう"}) + "\n")
    (tmp_path / "junk.npz").write_bytes(b"not a model")
    flags = [
        f.replace("NOTMODEL", str(tmp_path / "junk.npz")).replace("MODEL", model) for f in flags
    ]
    code = main(["--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "o"), *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err and message in err
    assert not (tmp_path / "o").exists()


def test_the_pipeline_writes_the_column_and_accounts_for_the_filtered(tmp_path, model):
    texts = [t + str(i) for i in range(30) for t in GOOD[:1]] + [
        o + f" {i}" for i in range(4) for o in ODD
    ]
    texts = [f"{t}{'あいう' * (i % 5)}" for i, t in enumerate(texts)]
    with gzip.open(tmp_path / "in.jsonl.gz", "wt", encoding="utf-8") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"id": f"doc{i}", "text": t}, ensure_ascii=False) + "\n")
    scorer = NgramScorer.load(model)
    bound = 40.0
    above = sum(scorer.perplexity(t) > bound for t in texts)
    assert 0 < above < len(texts)
    out = tmp_path / "out"
    manifest = run(
        [
            "--input",
            str(tmp_path / "in.jsonl.gz"),
            "--output",
            str(out),
            "--runner",
            "FnApiRunner",
            "--num-shards",
            "2",
            "--min-chars",
            "1",
            "--no-near-dedup",
            "--perplexity-model",
            model,
            "--max-perplexity",
            str(bound),
        ]
    )
    stats = json.loads((out / "stats.json").read_text())
    others = stats["filtered"] - stats["filtered_by_reason"][ABOVE_MAX]  # the default filters
    assert 0 < stats["filtered_by_reason"][ABOVE_MAX] <= above
    assert stats["kept"] + stats["filtered_by_reason"][ABOVE_MAX] + others == len(texts)
    assert (
        stats["read"] == stats["kept"] + stats["filtered"] + stats["duplicates"] + stats["rejected"]
    )
    rows = [r for split in ("train", "val") for r in pq.read_table(out / split).to_pylist()]
    assert len(rows) == stats["kept"]
    for r in rows:
        assert r["perplexity"] <= bound
        assert math.isclose(r["perplexity"], scorer.perplexity(r["text"]), rel_tol=1e-9)
    assert manifest["perplexity_filter"]["max_perplexity"] == bound


def test_the_workers_need_no_torch(model):
    code = (
        "import sys; from beam_jobs.text.perplexity_filter import ScorePerplexityFn, "
        "PerplexityConfig; fn = ScorePerplexityFn(PerplexityConfig(sys.argv[1])); fn.setup(); "
        "print(fn.scorer.perplexity('あいう')); assert 'torch' not in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", code, model], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) > 1
