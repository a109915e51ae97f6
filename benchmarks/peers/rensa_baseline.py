"""The bare-library bound for near dedup: rensa MinHash + LSH over our dedup key, greedy keep.

    python benchmarks/peers/rensa_baseline.py OUT.jsonl FILE.jsonl.gz [...] [--bands 16 --rows 8]

Same key (`beam_jobs.text.normalize.dedup_key`), same character 5-gram shingles, LSH with the
same bands x rows as the pipeline; documents in id order, each queried against the documents
kept so far and removed on any hit (greedy keep: the smallest id survives). No verification,
no components. Writes one {"id", "duplicate_of"} line per removal.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

from rensa import RMinHash, RMinHashLSH

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from beam_jobs.text.normalize import dedup_key  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("output")
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--bands", type=int, default=16)
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--shingle-size", type=int, default=5)
    ap.add_argument("--threshold", type=float, default=0.8)
    a = ap.parse_args(argv)
    n, num_perm = a.shingle_size, a.bands * a.rows
    docs = []
    for path in a.inputs:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            docs.extend((r["id"], dedup_key(r["text"])) for r in map(json.loads, fh))
    docs.sort()
    lsh = RMinHashLSH(a.threshold, num_perm, a.bands)
    with open(a.output, "w", encoding="utf-8") as out:
        for i, (doc_id, key) in enumerate(docs):
            if not key:
                continue
            m = RMinHash(num_perm, 1)
            m.update([key[j : j + n] for j in range(max(1, len(key) - n + 1))])
            hits = lsh.query(m)
            if hits:
                out.write(json.dumps({"id": doc_id, "duplicate_of": docs[min(hits)][0]}) + "\n")
            else:
                lsh.insert(i, m)


if __name__ == "__main__":
    main()
