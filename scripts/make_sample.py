"""Rebuild the bundled sample (data/sample/) from ../shared/corpora/ja: a deterministic slice
that keeps each record's `id`, `text` and `source` (its licence)."""

import gzip
import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path

SHARED = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/corpora/ja")
OUT = Path("data/sample/ja_sample.jsonl.gz")
# (file, documents to take, max characters per document)
PLAN = [
    ("ja_manpages", 90, 6000),
    ("ja_libreoffice_help", 70, 4000),
    ("ja_gimp_help", 35, 5000),
    ("ja_debian_docs", 6, 12000),
]
PYTHON_PAGES, PYTHON_MAX = 22, 9000  # pages taken on every branch: natural near-duplicates


def rank(record):
    return hashlib.sha256(record["id"].encode()).hexdigest()


def load(name):
    with gzip.open(SHARED / f"{name}.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def main():
    chosen = []
    for name, count, max_chars in PLAN:
        pool = sorted((r for r in load(name) if 200 <= len(r["text"]) <= max_chars), key=rank)
        chosen += pool[:count]
    pages = defaultdict(list)
    for r in load("ja_python_docs"):
        pages[r["doc_path"]].append(r)
    eligible = sorted(
        (
            p
            for p, rs in pages.items()
            if len(rs) >= 5 and all(200 <= len(r["text"]) <= PYTHON_MAX for r in rs)
        ),
        key=lambda p: hashlib.sha256(p.encode()).hexdigest(),
    )
    for page in eligible[:PYTHON_PAGES]:
        chosen += sorted(pages[page], key=lambda r: r["id"])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(OUT, "wb", mtime=0) as f:
        for r in sorted(chosen, key=lambda r: r["id"]):
            keep = {k: r[k] for k in ("id", "text", "source", "license") if k in r}
            f.write((json.dumps(keep, ensure_ascii=False) + "\n").encode("utf-8"))
    print(f"{OUT}: {len(chosen)} documents, {sum(len(r['text']) for r in chosen)} characters")


if __name__ == "__main__":
    main()
