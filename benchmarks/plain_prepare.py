"""The peer of the Beam pipeline: the same stages (read, normalize, filter, tokenize, exact
dedup, split, shards, vocabulary, n-gram counts, stats) as one plain single-process Python
script, written the obvious way (dicts and Counters), sharing only the pure functions.

    python benchmarks/plain_prepare.py OUTPUT_DIR INPUT [INPUT ...]
"""

from __future__ import annotations

import gzip
import json
import os
import sys
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq

from beam_jobs.counts.counting import build_vocab, ngrams_of
from beam_jobs.split.assign import assign_split, shard_of
from beam_jobs.text.filters import FilterConfig, filter_reason
from beam_jobs.text.normalize import dedup_key, normalize_text


def main(
    out_dir: str, paths: list[str], num_shards: int = 4, val_fraction: float = 0.05, order: int = 3
) -> dict:
    config = FilterConfig()
    stats = Counter()
    kept: dict[str, dict] = {}  # dedup key → smallest-id document
    for path in paths:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                stats["read"] += 1
                record = json.loads(line)
                text = normalize_text(record["text"])
                reason = filter_reason(text, config)
                if reason:
                    stats["filtered"] += 1
                    continue
                doc = {
                    "id": record["id"],
                    "text": text,
                    "n_tokens": len(list(text)),
                    "n_chars": len(text),
                    "source": record.get("source"),
                }
                key = dedup_key(text)
                if key in kept:
                    stats["duplicates"] += 1
                    if doc["id"] < kept[key]["id"]:
                        kept[key] = doc
                else:
                    kept[key] = doc
    shards: dict[tuple[str, int], list[dict]] = {}
    tokens, ngrams = Counter(), Counter()
    for doc in kept.values():
        split = assign_split(doc["id"], val_fraction)
        shards.setdefault((split, shard_of(doc["id"], num_shards)), []).append(doc)
        if split == "train":
            chars = list(doc["text"])
            tokens.update(chars)
            tokens["<bos>"] += 1
            tokens["<eos>"] += 1
            ngrams.update(ngrams_of(chars, order))
    for (split, shard), docs in shards.items():
        os.makedirs(os.path.join(out_dir, split), exist_ok=True)
        docs.sort(key=lambda d: d["id"])
        pq.write_table(
            pa.Table.from_pylist(docs),
            os.path.join(out_dir, split, f"{split}-{shard:05d}.parquet"),
            compression="zstd",
        )
    os.makedirs(os.path.join(out_dir, "ngrams"), exist_ok=True)
    grams = sorted(ngrams)
    pq.write_table(
        pa.table(
            {
                "order": [len(g) for g in grams],
                "ngram": [list(g) for g in grams],
                "count": [ngrams[g] for g in grams],
            }
        ),
        os.path.join(out_dir, "ngrams", "ngrams.parquet"),
        compression="zstd",
    )
    with open(os.path.join(out_dir, "vocab.json"), "w") as f:
        json.dump(build_vocab(tokens), f, ensure_ascii=False)
    stats["kept"] = len(kept)
    with open(os.path.join(out_dir, "stats.json"), "w") as f:
        json.dump(stats, f)
    return dict(stats)


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2:])))
