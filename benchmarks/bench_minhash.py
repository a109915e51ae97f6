"""MinHash signature throughput, one process, side by side on the same documents:
datasketch `MinHash.update_batch`, rensa `RMinHash`, and beam_jobs.dedup.minhash (numba).

    python benchmarks/bench_minhash.py [--num-perm 128] [--shingle-size 3] [--chars 3000000]

Inputs: random Japanese text (hiragana, katakana and common kanji, uniform), and real documents
(the dedup keys of ja_python_docs). Characters/s counts characters of the keys. datasketch is
timed two ways: `update_batch` alone on prepared shingle bytes, and end to end (shingling,
encoding, update_batch); rensa end to end (shingling + update + digest); ours end to end from
the key string. All use the same shingles and number of permutations.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from beam_jobs.dedup.minhash import MinHasher  # noqa: E402
from beam_jobs.dedup.shingles import shingles  # noqa: E402
from beam_jobs.text.normalize import dedup_key  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpora" / "ja" / "ja_python_docs.jsonl.gz"
JA_CHARS = (
    [chr(c) for c in range(0x3041, 0x3097)]
    + [chr(c) for c in range(0x30A1, 0x30FB)]
    + [chr(c) for c in range(0x4E00, 0x4E00 + 2000)]
)


def random_docs(total_chars: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    docs, n = [], 0
    while n < total_chars:
        length = rng.randint(200, 8000)
        docs.append("".join(rng.choices(JA_CHARS, k=length)))
        n += length
    return docs


def corpus_docs(total_chars: int) -> list[str]:
    docs, n = [], 0
    with gzip.open(CORPUS, "rt", encoding="utf-8") as fh:
        for line in fh:
            key = dedup_key(json.loads(line)["text"])
            docs.append(key)
            n += len(key)
            if n >= total_chars:
                break
    return docs


def timed(fn, repeat=1):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bench(docs: list[str], num_perm: int, n: int, budget_chars: int) -> list[dict]:
    from datasketch import MinHash
    from rensa import RMinHash

    chars = sum(map(len, docs))
    # datasketch is ~1 M chars/s: time it on a prefix of the documents
    sub, sub_chars = [], 0
    for d in docs:
        if sub_chars >= budget_chars:
            break
        sub.append(d)
        sub_chars += len(d)
    grams = [[s.encode("utf-8") for s in shingles(d, n)] for d in sub]

    def ds_batch_only():
        for g in grams:
            MinHash(num_perm=num_perm, seed=1).update_batch(g)

    def ds_end_to_end():
        for d in sub:
            MinHash(num_perm=num_perm, seed=1).update_batch(
                [s.encode("utf-8") for s in shingles(d, n)]
            )

    def rensa_end_to_end():
        for d in docs:
            m = RMinHash(num_perm=num_perm, seed=1)
            m.update(shingles(d, n))
            m.digest()

    rows = [
        ("datasketch update_batch only (sha1, affine32)", sub_chars, timed(ds_batch_only)),
        ("datasketch shingle+update_batch", sub_chars, timed(ds_end_to_end)),
        ("rensa RMinHash shingle+update+digest", chars, timed(rensa_end_to_end, 3)),
    ]
    for scheme in ("affine32", "legacy"):
        hasher = MinHasher(num_perm, 1, scheme, n)
        hasher.signature(docs[0])  # load or compile the kernel outside the timing
        rows.append(
            (
                f"beam_jobs.dedup.minhash {scheme} (numba, from key)",
                chars,
                timed(lambda h=hasher: [h.signature(d) for d in docs], 3),
            )
        )
    base = rows[0][1] / rows[0][2]
    return [
        {
            "impl": name,
            "chars": c,
            "seconds": round(s, 3),
            "mchars_per_s": round(c / s / 1e6, 2),
            "x_update_batch": round(c / s / base, 1),
        }
        for name, c, s in rows
    ]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--num-perm", type=int, default=128)
    ap.add_argument("--shingle-size", type=int, nargs="+", default=[3, 5])
    ap.add_argument("--chars", type=int, default=4_000_000, help="characters for the fast ones")
    ap.add_argument("--datasketch-chars", type=int, default=1_000_000)
    a = ap.parse_args(argv)
    np.random.seed(0)
    inputs = {"random Japanese": random_docs(a.chars), "ja_python_docs keys": corpus_docs(a.chars)}
    for n in a.shingle_size:
        for label, docs in inputs.items():
            print(
                f"\n{label}: {len(docs)} docs, {sum(map(len, docs)):,} chars, "
                f"{a.num_perm} permutations, character {n}-grams",
                flush=True,
            )
            for row in bench(docs, a.num_perm, n, a.datasketch_chars):
                print(
                    f"  {row['impl']:<48} {row['mchars_per_s']:>8.2f} M chars/s "
                    f"{row['x_update_batch']:>7.1f}x  ({row['chars']:,} chars, {row['seconds']} s)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
