"""The n-gram baselines of a training run, cached in `RUN/baselines.json`.

Scoring the baselines takes seconds to minutes on a large validation split and gives the same
numbers for the same data, vocabulary and k, so a resumed or repeated run reads them back. The
cache holds one entry per domain: {"format_version": 2, "domains": {name: {key, results}}}.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time

from lm.data import Vocab, data_fingerprint
from lm.files import write_json

CACHE = "baselines.json"
CACHE_VERSION = 2


def hash_tokens(tokens: list[str]) -> str:
    return hashlib.sha256("\n".join(tokens).encode("utf-8")).hexdigest()[:16]


def _read_cache(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            cached = json.load(f)
    except (OSError, json.JSONDecodeError):
        return {}
    if not isinstance(cached, dict) or cached.get("format_version") != CACHE_VERSION:
        return {}  # another layout (version 1 had one domain's key and results): recompute
    return cached.get("domains", {})


def cached_baselines(out: str, domain, vocab: Vocab, add_k: float, label: str = "") -> dict:
    """`lm.ngram.evaluate_baselines` of one `lm.domains.Domain` on its validation split,
    through the cache in `out`; `label` names the domain in the printed line."""
    from lm.ngram import evaluate_baselines

    path = os.path.join(out, CACHE)
    key = {
        "fingerprint": data_fingerprint(domain.manifest),
        "add_k": add_k,
        "vocab": [len(vocab), hash_tokens(vocab.tokens)],
    }
    cache = _read_cache(path)
    entry = cache.get(domain.name)
    if entry is not None and entry.get("key") == key:
        return entry["results"]
    start = time.time()
    results = evaluate_baselines(domain.dir, domain.manifest, vocab, add_k)
    print(
        f"baselines{' ' + label if label else ''} ({time.time() - start:.1f}s): "
        + ", ".join(f"{k} {v['perplexity']:.3f}" for k, v in results.items()),
        file=sys.stderr,
    )
    cache[domain.name] = {"key": key, "results": results}
    write_json(path, {"format_version": CACHE_VERSION, "domains": cache})
    return results
