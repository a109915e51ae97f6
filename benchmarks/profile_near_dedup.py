"""Where the pipeline's time goes, step by step, from the runner's own metrics: execution
milliseconds per transform (Beam's state sampler) and elements and bytes into every shuffle.

    python benchmarks/profile_near_dedup.py --input '../shared/corpora/ja/*.jsonl.gz' \
        --output /tmp/prof [--direct_num_workers=2 --direct_running_mode=multi_processing]

Any other flag goes to `beam_jobs.prepare` (default runner: the in-process FnApiRunner). The
run is the pipeline itself (`build_dedup_stage` + `build_pipeline`), once. Milliseconds are
summed per transform path up to `--depth` levels (`NearDedup/Verify/ByCenter` at 3); a
shuffle is a GroupByKey (CoGroupByKey and CombinePerKey expand to one), its bytes the input
PCollection's sampled mean element size times its element count.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import apache_beam as beam
from apache_beam.metrics import monitoring_infos as mi

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from beam_jobs import SCHEMA_VERSION, prepare  # noqa: E402
from beam_jobs.io.files import check_inputs_exist  # noqa: E402
from beam_jobs.outputs.lock import OutputLock  # noqa: E402
from beam_jobs.outputs.stages import input_metadata, stage_key  # noqa: E402
from beam_jobs.runtime.worker_env import local_worker_env  # noqa: E402

GBK = "beam:transform:group_by_key:v1"
MSECS = (mi.START_BUNDLE_MSECS_URN, mi.PROCESS_BUNDLE_MSECS_URN, mi.FINISH_BUNDLE_MSECS_URN)


def run_profiled(argv: list[str]):
    """Run the pipeline; returns (seconds, the pipeline proto, monitoring infos)."""
    opts, config = prepare.parse_options(argv)
    check_inputs_exist(config.read.patterns)
    out = config.output.output
    with OutputLock(out) as lock:
        prepare.prepare_output_dir(out, True, False)
        inputs = input_metadata(config.read.patterns)
        key = stage_key(
            config.options,
            {
                "schema_version": SCHEMA_VERSION,
                "near_dedup": config.near and config.near.settings(),
            },
            inputs,
        )
        pipeline = beam.Pipeline(options=opts)
        stage = prepare.build_dedup_stage(pipeline, config, key, lock.run_id)
        prepare.build_final_steps(pipeline, config, stage, lock.run_id)
        proto = pipeline.to_runner_api()
        start = time.perf_counter()
        with local_worker_env(opts):
            result = pipeline.run()
            result.wait_until_finish()
        return time.perf_counter() - start, proto, list(result.monitoring_infos())


def summarize(proto, infos, depth: int) -> dict:
    names = {tid: t.unique_name for tid, t in proto.components.transforms.items()}
    msecs = defaultdict(float)
    counts, sizes = {}, {}
    for info in infos:
        labels = dict(info.labels)
        if info.urn in MSECS and "PTRANSFORM" in labels:
            name = names.get(labels["PTRANSFORM"], labels["PTRANSFORM"])
            msecs[name] += mi.extract_counter_value(info)
        elif info.urn == mi.ELEMENT_COUNT_URN and "PCOLLECTION" in labels:
            counts[labels["PCOLLECTION"]] = counts.get(
                labels["PCOLLECTION"], 0
            ) + mi.extract_counter_value(info)
        elif info.urn == mi.SAMPLED_BYTE_SIZE_URN and "PCOLLECTION" in labels:
            d = mi.extract_distribution(info)
            c, s = sizes.get(labels["PCOLLECTION"], (0, 0))
            sizes[labels["PCOLLECTION"]] = (c + d[0], s + d[1])
    leaves = {t.unique_name for t in proto.components.transforms.values() if not t.subtransforms}
    by_path = defaultdict(float)
    for name, ms in msecs.items():
        if name in leaves:
            by_path["/".join(name.split("/")[:depth])] += ms
    shuffles = {}
    for t in proto.components.transforms.values():
        if t.spec.urn == GBK:
            (pc,) = t.inputs.values()
            n = counts.get(pc, 0)
            c, s = sizes.get(pc, (0, 0))
            shuffles[t.unique_name] = {"elements": n, "mb": round(n * s / c / 1e6, 2) if c else 0}
    return {
        "msecs_by_step": dict(sorted(by_path.items(), key=lambda kv: -kv[1])),
        "shuffles": dict(sorted(shuffles.items(), key=lambda kv: -kv[1]["mb"])),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--json", type=Path)
    a, rest = ap.parse_known_args(argv)
    if not any(r.startswith("--runner") for r in rest):
        rest = [*rest, "--runner", "FnApiRunner"]
    seconds, proto, infos = run_profiled([*rest, "--no-report"])
    s = summarize(proto, infos, a.depth)
    total = sum(s["msecs_by_step"].values())
    print(f"wall {seconds:.1f} s; sampled execution time {total / 1e3:.1f} s over all steps")
    print(f"{'step':60} {'s':>7} {'share':>6}")
    for name, ms in s["msecs_by_step"].items():
        if ms >= 0.005 * total:
            print(f"{name:60} {ms / 1e3:7.2f} {ms / total:6.1%}")
    print(f"\n{'shuffle (GroupByKey)':60} {'elements':>9} {'MB':>8}")
    for name, row in s["shuffles"].items():
        print(f"{name:60} {row['elements']:9d} {row['mb']:8.2f}")
    if a.json:
        a.json.write_text(json.dumps({"seconds": seconds, **s}, indent=1))


if __name__ == "__main__":
    main()
