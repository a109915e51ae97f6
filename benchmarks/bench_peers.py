"""The pipeline next to datatrove, text-dedup and a rensa baseline on the same input, in one run.

    python benchmarks/bench_peers.py --corpus ja [--repeat 2] [--json out.json]
    python benchmarks/bench_peers.py --corpus en            # the pipeline gets --scripts latin

Peers run in their own virtual environments under ~/.cache/corpus-lm/peers/ (created and
installed from PyPI on first use, reused after; nothing is downloaded while timing):
- datatrove 0.10.1: its 4-stage MinHash pipeline (`benchmarks/peers/datatrove_minhash.py`,
  MinhashConfig defaults: word 5-grams of its spaCy word tokenizer, 14 x 8, xxhash 64).
- text-dedup 0.4.0 (0.4.1 needs Python 3.12): `python -m text_dedup.minhash`, threshold 0.8,
  its defaults otherwise (word 5-grams, 250 permutations, min_length 5), xxh3 hashing.
- rensa (the project's test extra): `benchmarks/peers/rensa_baseline.py`, our key, character
  5-grams, 16 x 8 bands, greedy keep, no verification.
The pipeline runs in-process (all defaults), on two worker processes, and in-process "lean"
(`LEAN`: without the containment split, the leakage report and n-grams above unigrams) with
and without near dedup: the difference of those two, run after run, is the near-dedup
increment, and its ratio to the rensa script's whole time in the same round is the speed goal
(at most 1). After `--warmup` untimed rounds, runs are interleaved, `--repeat` times;
medians.

Reported per tool: wall and CPU seconds of the whole process tree (`benchmarks/tree_usage.py`),
peak tree RSS, removals, and agreement on exact character-5-gram Jaccard of our dedup key: the
share of a tool's removals whose closest document in that tool's own kept set has J >= 0.8
(exact above the 0.5 floor of the prefix filter, `benchmarks/exact_jaccard.py`), and the overlap
of the removal sets.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from beam_jobs.text.normalize import NormalizeConfig, dedup_key, normalize_text  # noqa: E402
from benchmarks.exact_jaccard import NearestIndex, ShingleSets  # noqa: E402
from benchmarks.tree_usage import run_tree_measured  # noqa: E402

CORPORA = ROOT.parent / "shared" / "corpora"
PEERS = Path(os.environ.get("CORPUS_LM_PEERS", Path.home() / ".cache/corpus-lm/peers"))
VENVS = {  # name: (python, pip requirement, distribution, version)
    "datatrove": (
        "python3.11",
        "datatrove[processing,multilingual]==0.10.1",
        "datatrove",
        "0.10.1",
    ),
    "text-dedup": ("python3.11", "text-dedup==0.4.0", "text-dedup", "0.4.0"),
}
LANGUAGE = {"ja": ("ja", "jpn"), "en": ("latin", "eng")}  # corpus: (--scripts, datatrove)
OWN_OUTPUTS = {"datatrove": ("dt",), "text-dedup": ("td", "td_cache")}
# The pipeline without the steps after dedup that are not needed to write the shards (the
# containment split, the leakage report, n-grams above unigrams): those cost 60% of the run,
# vary by seconds between runs, and get cheaper when near dedup removes documents, so the
# near-dedup increment is measured between two lean runs that differ only in near dedup.
LEAN = ["--no-containment-split", "--no-leakage-report", "--ngram-order", "1"]
OFFLINE = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def peer_python(name: str) -> str:
    """The venv's python, created and installed when missing or at another version."""
    base, requirement, dist, version = VENVS[name]
    python = PEERS / name / "bin" / "python"
    probe = f"import importlib.metadata as m; print(m.version({dist!r}))"
    if python.exists():
        found = subprocess.run([python, "-c", probe], capture_output=True, text=True)
        if found.returncode == 0 and found.stdout.strip() == version:
            return str(python)
    print(f"installing {requirement} into {PEERS / name}", flush=True)
    subprocess.run([base, "-m", "venv", str(PEERS / name)], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", requirement], check=True)
    return str(python)


def flat_copy(files: list[str], path: Path) -> None:
    """{id, text} only: the HF json loader wants one schema and the files' extra fields differ."""
    with open(path, "w", encoding="utf-8") as out:
        for f in files:
            with gzip.open(f, "rt", encoding="utf-8") as fh:
                for r in map(json.loads, fh):
                    out.write(json.dumps({"id": r["id"], "text": r["text"]}, ensure_ascii=False))
                    out.write("\n")


def commands(corpus_dir: Path, files: list[str], work: Path, lang: str, workers: int) -> dict:
    scripts, dt_lang = LANGUAGE.get(lang, ("any", "eng"))
    prepare = [
        sys.executable,
        "-m",
        "beam_jobs.prepare",
        "--input",
        str(corpus_dir / "*.jsonl.gz"),
        "--no-report",
        "--scripts",
        scripts,
        "--overwrite",
    ]
    local = ["--runner", "FnApiRunner"]
    two = local + [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
    return {
        "pipeline in-process": prepare + local + ["--output", str(work / "pipe")],
        "pipeline in-process, lean": prepare + local + LEAN + ["--output", str(work / "lean")],
        "pipeline in-process, lean, no near dedup": prepare
        + local
        + LEAN
        + ["--no-near-dedup", "--output", str(work / "lean_nonear")],
        f"pipeline {workers} workers": prepare + two + ["--output", str(work / "pipe2")],
        "datatrove 0.10.1": [
            peer_python("datatrove"),
            str(ROOT / "benchmarks/peers/datatrove_minhash.py"),
            str(corpus_dir),
            "*.jsonl.gz",
            str(work / "dt"),
            "--language",
            dt_lang,
            "--workers",
            str(workers),
        ],
        "text-dedup 0.4.0": [
            peer_python("text-dedup"),
            "-m",
            "text_dedup.minhash",
            "--path",
            "json",
            "--data_files",
            str(work / "flat.jsonl"),
            "--split",
            "train",
            "--cache_dir",
            str(work / "td_cache"),
            "--output",
            str(work / "td"),
            "--column",
            "text",
            "--threshold",
            "0.8",
            "--hash_func",
            "xxh3",
            "--num_proc",
            str(workers),
        ],
        "rensa baseline": [
            sys.executable,
            str(ROOT / "benchmarks/peers/rensa_baseline.py"),
            str(work / "rensa.jsonl"),
            *files,
        ],
    }


def _ids_jsonl_gz(pattern: str) -> set[str]:
    out = set()
    for f in glob.glob(pattern):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            out.update(json.loads(line)["id"] for line in fh)
    return out


def removals(name: str, work: Path, all_ids: set[str]) -> tuple[set[str], set[str]]:
    """(removed ids, kept ids) of one tool's last run."""
    import pyarrow.parquet as pq

    if name.startswith("pipeline") and "no near" not in name:
        out = work / ("pipe2" if "workers" in name else "lean" if "lean" in name else "pipe")
        dup = pq.read_table(sorted(glob.glob(str(out / "duplicates/*.parquet"))), columns=["id"])
        kept = pq.read_table(
            sorted(glob.glob(str(out / "train/*.parquet")))
            + sorted(glob.glob(str(out / "val/*.parquet"))),
            columns=["id"],
        )
        return set(dup.column("id").to_pylist()), set(kept.column("id").to_pylist())
    if name.startswith("datatrove"):
        return _ids_jsonl_gz(str(work / "dt/removed/*.jsonl.gz")), _ids_jsonl_gz(
            str(work / "dt/kept/*.jsonl.gz")
        )
    if name.startswith("text-dedup"):
        import pyarrow as pa

        kept = set()
        for f in glob.glob(str(work / "td/*.arrow")):
            with pa.memory_map(f) as src:
                kept.update(pa.ipc.open_stream(src).read_all().column("id").to_pylist())
        return all_ids - kept, kept
    if name.startswith("rensa"):
        with open(work / "rensa.jsonl", encoding="utf-8") as fh:
            removed = {json.loads(line)["id"] for line in fh}
        return removed, all_ids - removed
    raise KeyError(name)


def agreement(results: dict, keys: dict[str, str], threshold: float, floor: float) -> dict:
    """Per tool: {removed id: (exact J, id) of its closest kept document (own kept set), or
    (None, None) below the floor}."""
    ids = sorted(keys)
    index = {d: i for i, d in enumerate(ids)}
    sets = ShingleSets([keys[d] for d in ids], 5)
    out = {}
    for name, (removed, kept) in results.items():
        near = NearestIndex(sets, [index[d] for d in kept if d in index], floor)
        found = {d: near.nearest(index[d]) for d in removed if d in index}
        out[name] = {d: (j, None if k is None else ids[k]) for d, (j, k) in found.items()}
    return out


def _twin(sims: dict, doc: str, threshold: float) -> bool:
    return (sims.get(doc, (None, None))[0] or 0) >= threshold


def report_agreement(results: dict, sims: dict, threshold: float) -> None:
    names = list(results)
    print(
        f"\n{'tool':36} {'removed':>7} {'twin>=t':>8} {'share':>6} {'only it':>7} "
        f"{'only: twin>=t':>13}"
    )
    for name in names:
        removed = results[name][0]
        family = name.split()[0]  # "only it": removed by no other tool (own variants aside)
        others = set().union(*(results[o][0] for o in names if o.split()[0] != family))
        only = removed - others
        ok = sum(1 for d in removed if _twin(sims[name], d, threshold))
        only_ok = sum(1 for d in only if _twin(sims[name], d, threshold))
        share = ok / len(removed) if removed else 1.0
        only_share = f"{only_ok}/{len(only)}" if only else "-"
        print(f"{name:36} {len(removed):7d} {ok:8d} {share:6.1%} {len(only):7d} {only_share:>13}")
    print(
        "\nremoved by A, not by B: how many; how many have a kept twin >= t in A; of those, how "
        "many twins B removed (the same cluster, another survivor) and how many B kept too "
        "(a pair B missed)"
    )
    for a in names:
        for b in names:
            if a.split()[0] == b.split()[0]:
                continue
            only = results[a][0] - results[b][0]
            twins = [d for d in only if _twin(sims[a], d, threshold)]
            swapped = sum(1 for d in twins if sims[a][d][1] in results[b][0])
            print(
                f"  {a} not {b}: {len(only)}, twin {len(twins)} "
                f"({len(twins) / max(1, len(only)):.0%}); survivor swapped {swapped}, "
                f"extra with a twin {len(twins) - swapped}"
            )
    print("\noverlap of removal sets (|A & B|; Jaccard of the sets)")
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            ra, rb = results[a][0], results[b][0]
            inter = len(ra & rb)
            print(f"  {a} & {b}: {inter} ({inter / max(1, len(ra | rb)):.3f})")


def report_increment(timings: dict[str, list[dict]]) -> None:
    """The near-dedup increment, lean with minus lean without, round by round (the machine's
    speed drifts between rounds, not within one), and its ratio to rensa's whole time."""
    near, off = (
        timings.get("pipeline in-process, lean"),
        timings.get("pipeline in-process, lean, no near dedup"),
    )
    if not near or not off:
        return
    rounds = range(min(len(near), len(off)))
    for key, label in (("seconds", "wall"), ("cpu_seconds", "CPU")):
        inc = [near[i][key] - off[i][key] for i in rounds]
        line = f"near-dedup increment, {label} s: median {statistics.median(inc):.2f} "
        line += f"({', '.join(f'{x:.2f}' for x in inc)})"
        rensa = timings.get("rensa baseline")
        if rensa:
            ratios = [inc[i] / rensa[i][key] for i in rounds if i < len(rensa)]
            line += f"; / rensa's whole time: median {statistics.median(ratios):.2f} "
            line += f"({', '.join(f'{x:.2f}' for x in ratios)})"
        print(line)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default="ja", help="ja, en, or a folder of *.jsonl.gz")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="rounds of every tool run first and not timed (page cache, numba cache)",
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--floor", type=float, default=0.5, help="prefix-filter floor (closest kept)")
    ap.add_argument("--only", nargs="*", help="run only the tools whose name starts with these")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--timing-only", action="store_true", help="skip the agreement part")
    ap.add_argument(
        "--work",
        type=Path,
        help="keep every tool's output here (default: a temporary folder, removed)",
    )
    ap.add_argument(
        "--resume",
        action="store_true",
        help="keep the timings in WORK/timings.json and make only the missing runs (the "
        "tools' outputs in WORK are those of the last run made)",
    )
    a = ap.parse_args(argv)
    corpus_dir = CORPORA / a.corpus if a.corpus in LANGUAGE else Path(a.corpus)
    files = sorted(glob.glob(str(corpus_dir / "*.jsonl.gz")))
    lang = a.corpus if a.corpus in LANGUAGE else "any"
    env = {**os.environ, "PYTHONPATH": str(ROOT), **OFFLINE}
    megabytes = sum(os.path.getsize(f) for f in files) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        work = a.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        flat_copy(files, work / "flat.jsonl")
        runs = commands(corpus_dir, files, work, lang, a.workers)
        if a.only:
            runs = {k: v for k, v in runs.items() if k.startswith(tuple(a.only))}
        timings: dict[str, list[dict]] = {name: [] for name in runs}
        checkpoint = work / "timings.json"
        if a.resume and checkpoint.exists():
            saved = json.loads(checkpoint.read_text())
            timings.update({k: v for k, v in saved.items() if k in runs})

        def run_once(name: str, cmd: list[str]) -> dict:
            for leftover in OWN_OUTPUTS.get(name.split()[0], ()):
                shutil.rmtree(work / leftover, ignore_errors=True)  # peers refuse or skip
            with open(work / "log.txt", "w") as log:
                return run_tree_measured(
                    cmd, env=env, cwd=work, stdout=log, stderr=subprocess.STDOUT
                )

        for _ in range(0 if a.resume else a.warmup):
            for name, cmd in runs.items():
                run_once(name, cmd)
                print(f"  warm-up {name}", flush=True)
        for rep in range(a.repeat):
            for name, cmd in runs.items():
                if len(timings[name]) > rep:  # measured before (--resume)
                    continue
                timings[name].append(run_once(name, cmd))
                checkpoint.write_text(json.dumps(timings, indent=1))
                print(
                    f"  run {rep + 1} {name}: {timings[name][-1]['seconds']:.1f} s wall, "
                    f"{timings[name][-1]['cpu_seconds']:.1f} s CPU",
                    flush=True,
                )
        all_ids, keys = set(), {}
        for f in files:
            with gzip.open(f, "rt", encoding="utf-8") as fh:
                for r in map(json.loads, fh):
                    all_ids.add(r["id"])
                    keys[r["id"]] = dedup_key(normalize_text(r["text"], NormalizeConfig()))
        results = {n: removals(n, work, all_ids) for n in runs if "no near" not in n}
    print(
        f"\n{a.corpus}: {len(files)} files, {megabytes:.1f} MB gzip, {len(all_ids)} docs, "
        f"{os.cpu_count()} cores, medians of {a.repeat}"
    )
    print(f"{'tool':36} {'wall s':>7} {'CPU s':>7} {'peak MiB':>8} {'range wall':>12}")
    med = {}
    for name, ts in timings.items():
        wall = statistics.median(t["seconds"] for t in ts)
        cpu = statistics.median(t["cpu_seconds"] for t in ts)
        peaks = [t["peak_tree_mib"] for t in ts if t.get("peak_tree_mib") is not None]
        med[name] = {"wall": wall, "cpu": cpu, "peak_mib": max(peaks) if peaks else None}
        rng = f"{min(t['seconds'] for t in ts):.1f}-{max(t['seconds'] for t in ts):.1f}"
        peak = "-" if med[name]["peak_mib"] is None else f"{med[name]['peak_mib']:.0f}"
        print(f"{name:36} {wall:7.1f} {cpu:7.1f} {peak:>8} {rng:>12}")
    report_increment(timings)
    if a.timing_only:
        return
    sims = agreement(results, keys, a.threshold, a.floor)
    report_agreement(results, sims, a.threshold)
    if a.json:
        a.json.write_text(
            json.dumps(
                {
                    "corpus": a.corpus,
                    "timings": timings,
                    "medians": med,
                    "removed": {n: sorted(r[0]) for n, r in results.items()},
                    "closest_kept": sims,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
