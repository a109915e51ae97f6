import gzip
import json
import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI gates landing, so there the property tests draw the same examples every run; anywhere
# else they draw new ones and keep exploring (a failure found so prints its reproducer).
settings.register_profile("ci", derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# Pipelines here name the FnApiRunner, the CLI's local default: Beam's DirectRunner first tries
# to download and start Prism (the network in a test) and leaves two temporary dirs a run.

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpora"
SAMPLE = ROOT / "data" / "sample" / "ja_sample.jsonl.gz"
PROSE = (
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"
    "何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。"
)


def corpus_slice(name: str, count: int) -> list[dict]:
    """The first `count` records of a shared corpus file (the bundled sample where the shared
    corpora are not beside the checkout)."""
    path = SHARED / name
    if not path.exists():
        path = SAMPLE
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            out.append(json.loads(line))
            if len(out) == count:
                break
    return out


def write_jsonl(path: Path, records: list[dict], gz: bool = True) -> Path:
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def python_docs_pages(pages: int) -> list[dict]:
    """Every branch of the first `pages` Python-docs pages (by path) that exist on at least
    five branches and are not too long: natural exact and near duplicates."""
    path = SHARED / "ja" / "ja_python_docs.jsonl.gz"
    if not path.exists():
        path = SAMPLE
    by_page: dict[str, list[dict]] = {}
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record["id"].startswith("python-docs-ja:"):
                by_page.setdefault(record["id"].split(":", 2)[2], []).append(record)
    chosen = [
        p
        for p in sorted(by_page)
        if len(by_page[p]) >= 5 and all(len(r["text"]) < 8000 for r in by_page[p])
    ][:pages]
    return [r for p in chosen for r in by_page[p]]


@pytest.fixture(scope="session")
def ja_slice_dir(tmp_path_factory) -> Path:
    """A small multi-file Japanese input: slices of four shared corpora, including Python-docs
    pages repeated across branches (exact and near duplicates)."""
    d = tmp_path_factory.mktemp("ja_slice")
    write_jsonl(d / "python_docs.jsonl.gz", python_docs_pages(8))
    write_jsonl(d / "manpages.jsonl.gz", corpus_slice("ja/ja_manpages.jsonl.gz", 40))
    write_jsonl(
        d / "libreoffice.jsonl", corpus_slice("ja/ja_libreoffice_help.jsonl.gz", 40), gz=False
    )
    write_jsonl(d / "gimp.jsonl.gz", corpus_slice("ja/ja_gimp_help.jsonl.gz", 20))
    return d
