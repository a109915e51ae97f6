"""A tiny, valid pipeline output directory (docs/output_format.md, schema 1) written with
pyarrow and the pipeline's own schemas, so the `lm` tests need no Beam run (tests/test_contract.py
checks the real hand-off). Counts follow the contract: every train document is
`<bos> t1 .. tk <eos>` and n-grams of every order are counted over raw tokens."""

from __future__ import annotations

import json
import os
import random
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq

from beam_jobs.records import DOC_SCHEMA, NGRAM_SCHEMA
from beam_jobs.tokens.tokenizers import BOS, EOS, SPECIAL_TOKENS, UNK

SYLLABLES = [
    "の",
    "に",
    "は",
    "を",
    "た",
    "が",
    "で",
    "て",
    "と",
    "し",
    "れ",
    "さ",
    "ある",
    "いる",
    "する",
    "こと",
    "関数",
    "引数",
    "値",
    "型",
    "。",
    "、",
    "\n",
    "a",
    "b",
]


def random_texts(n: int, seed: int, min_len: int = 1, max_len: int = 40, extra: str = "") -> list:
    rng = random.Random(seed)
    alphabet = SYLLABLES + list(extra)
    return [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(min_len, max_len)))
        for _ in range(n)
    ]


def sequences(texts):
    return [[BOS, *t, EOS] for t in texts]


def count_ngrams(texts, order: int) -> Counter:
    counter = Counter()
    for seq in sequences(texts):
        for n in range(1, order + 1):
            for i in range(len(seq) - n + 1):
                counter[tuple(seq[i : i + n])] += 1
    return counter


def _write_docs(path, ids, texts, row_group_size):
    table = pa.table(
        {
            "id": ids,
            "text": texts,
            "n_tokens": [len(t) for t in texts],
            "n_chars": [len(t) for t in texts],
            "source": ["fixture"] * len(texts),
        },
        schema=DOC_SCHEMA,
    )
    pq.write_table(table, path, row_group_size=row_group_size, compression="zstd")


def write_data_dir(
    root,
    train_texts,
    val_texts,
    order: int = 3,
    min_count: int = 1,
    num_shards: int = 2,
    row_group_size: int = 4,
    ngram_shards: int = 2,
    manifest_overrides: dict | None = None,
) -> str:
    """Write a complete data directory under `root`; returns its path."""
    root = str(root)
    for sub in ("train", "val", "ngrams"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    splits = {}
    for split, texts in (("train", train_texts), ("val", val_texts)):
        ids = [f"{split}-{i:06d}" for i in range(len(texts))]
        shards = []
        for s in range(num_shards):
            rel = f"{split}/{split}-{s:05d}-of-{num_shards:05d}.parquet"
            part = [(i, t) for k, (i, t) in enumerate(zip(ids, texts)) if k % num_shards == s]
            _write_docs(
                os.path.join(root, rel), [i for i, _ in part], [t for _, t in part], row_group_size
            )
            shards.append({"path": rel, "rows": len(part), "tokens": sum(len(t) for _, t in part)})
        splits[split] = {"shards": shards, "rows": len(texts), "tokens": sum(len(t) for t in texts)}

    chars = Counter(c for t in train_texts for c in t)
    kept = sorted((c for c, k in chars.items() if k >= min_count), key=lambda c: (-chars[c], c))
    unk = sum(k for c, k in chars.items() if k < min_count)
    vocab = {
        "special_tokens": list(SPECIAL_TOKENS),
        "tokens": [*SPECIAL_TOKENS, *kept],
        "counts": [unk, len(train_texts), len(train_texts), *(chars[c] for c in kept)],
        "min_count": min_count,
        "max_vocab": 0,
        "total_tokens": sum(chars.values()),
        "unk_tokens": unk,
    }
    with open(os.path.join(root, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)

    counts = sorted(count_ngrams(train_texts, order).items(), key=lambda kv: (len(kv[0]), kv[0]))
    ngram_paths = []
    for s in range(ngram_shards):
        rel = f"ngrams/ngrams-{s:05d}-of-{ngram_shards:05d}.parquet"
        part = counts[s::ngram_shards]
        table = pa.table(
            {
                "order": [len(g) for g, _ in part],
                "ngram": [list(g) for g, _ in part],
                "count": [c for _, c in part],
            },
            schema=NGRAM_SCHEMA,
        )
        pq.write_table(table, os.path.join(root, rel), row_group_size=50)
        ngram_paths.append(rel)

    manifest = {
        "schema_version": 1,
        "complete": True,
        "created_by": "tests.lm_fixtures",
        "options": {"ngram_order": order, "min_count": min_count},
        "normalization": {},
        "tokenizer": {"name": "char"},
        "special_tokens": list(SPECIAL_TOKENS),
        "vocab": "vocab.json",
        "stats": "stats.json",
        "splits": splits,
        "ngrams": {"order": order, "shards": ngram_paths},
        "duplicates": {"shards": []},
        "rejected": {"shards": []},
        "input": {"files": [], "fingerprint": "fixture"},
    }
    manifest.update(manifest_overrides or {})
    with open(os.path.join(root, "stats.json"), "w") as f:
        json.dump({"kept": len(train_texts) + len(val_texts)}, f)
    with open(os.path.join(root, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False)
    return root


def small_data_dir(root, order: int = 3, n_train: int = 60, n_val: int = 15, **kw) -> str:
    """The default test corpus: random syllable texts; val holds a few chars unseen in train."""
    train = random_texts(n_train, seed=1)
    val = random_texts(n_val, seed=2, extra="猫犬")
    return write_data_dir(root, train, val, order=order, **kw)


__all__ = ["UNK", "write_data_dir", "small_data_dir", "count_ngrams", "random_texts"]
