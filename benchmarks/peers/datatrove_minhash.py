"""datatrove's 4-stage MinHash deduplication, as its own example wires it (signatures, buckets,
clusters, filter), run by `benchmarks/bench_peers.py` with the Python of datatrove's venv.

    python datatrove_minhash.py INPUT_DIR GLOB WORK_DIR --language jpn [--workers 2]

MinhashConfig defaults (word 5-grams, 14 buckets x 8 hashes, xxhash 64-bit); the word
tokenizer is datatrove's for the language (spaCy, SudachiPy for Japanese). Writes the kept
documents to WORK_DIR/kept and the removed ones to WORK_DIR/removed (JSON Lines, `id` kept).
Imports only datatrove: this file runs outside the project's venv.
"""

from __future__ import annotations

import argparse
import glob
import os

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input_dir")
    ap.add_argument("glob")
    ap.add_argument("work")
    ap.add_argument("--language", default="eng")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    config = MinhashConfig()
    tasks = len(glob.glob(os.path.join(a.input_dir, a.glob)))
    w, logs = a.work, os.path.join(a.work, "logs")

    def reader():
        return JsonlReader(a.input_dir, glob_pattern=a.glob, id_key="id", text_key="text")

    stage1 = LocalPipelineExecutor(
        [reader(), MinhashDedupSignature(f"{w}/signatures", config=config, language=a.language)],
        tasks=tasks,
        workers=a.workers,
        logging_dir=f"{logs}/signatures",
    )
    stage2 = LocalPipelineExecutor(
        [MinhashDedupBuckets(f"{w}/signatures", f"{w}/buckets", config=config)],
        tasks=config.num_buckets,
        workers=a.workers,
        logging_dir=f"{logs}/buckets",
        depends=stage1,
    )
    stage3 = LocalPipelineExecutor(
        [MinhashDedupCluster(f"{w}/buckets", f"{w}/remove_ids", config=config)],
        tasks=1,
        logging_dir=f"{logs}/clusters",
        depends=stage2,
    )
    stage4 = LocalPipelineExecutor(
        [
            reader(),
            MinhashDedupFilter(f"{w}/remove_ids", exclusion_writer=JsonlWriter(f"{w}/removed")),
            JsonlWriter(f"{w}/kept"),
        ],
        tasks=tasks,
        workers=a.workers,
        logging_dir=f"{logs}/filter",
        depends=stage3,
    )
    stage4.run()


if __name__ == "__main__":
    main()
