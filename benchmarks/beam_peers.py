"""Bare Beam pipelines over the same input and runner as `beam_jobs.prepare`: the peers the
scaling benchmark compares memory with, to tell what the runner costs from what we add.

    python -m benchmarks.beam_peers {read,shuffle} --input GLOB --output DIR [runner flags]

- `read`: every line read and measured, the sizes summed (combiner lifting, so no line
  leaves the stage that reads it). The least any pipeline over the corpus does.
- `shuffle`: the same with one `Reshuffle` of the lines, as any pipeline that regroups
  documents by a key has at least one.
Both run with the same local worker settings as the pipeline (`beam_jobs.runtime.worker_env`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from beam_jobs.runtime.worker_env import local_worker_env  # noqa: E402

MODES = ("read", "shuffle")


def build(pipeline: beam.Pipeline, mode: str, pattern: str, output: str) -> None:
    lines = pipeline | "Read" >> beam.io.ReadFromText(pattern)
    if mode == "shuffle":
        lines = lines | "Shuffle" >> beam.Reshuffle()
    (
        lines
        | "Size" >> beam.Map(len)
        | "Sum" >> beam.CombineGlobally(sum)
        | "Write" >> beam.io.WriteToText(output, num_shards=1)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    args, runner_flags = parser.parse_known_args(argv)
    options = PipelineOptions(runner_flags)
    Path(args.output).mkdir(parents=True, exist_ok=True)
    pipeline = beam.Pipeline(options=options)
    build(pipeline, args.mode, args.input, str(Path(args.output) / "chars"))
    with local_worker_env(options):
        pipeline.run().wait_until_finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
