"""The house rules of docs/architecture.md that a machine can check: small modules and
functions, few modules directly in beam_jobs/, and pure modules free of Beam."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("beam_jobs", "lm")
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 120
# Pure functions, tested apart from the Beam wiring: these modules never import Beam.
PURE = (
    "beam_jobs/text/normalize.py",
    "beam_jobs/text/filters.py",
    "beam_jobs/text/codepoints.py",
    "beam_jobs/dedup/minhash.py",
    "beam_jobs/dedup/lsh.py",
    "beam_jobs/dedup/shingles.py",
    "beam_jobs/counts/counting.py",
    "beam_jobs/split/assign.py",
    "beam_jobs/tokens/tokenizers.py",
    "beam_jobs/runtime/flags.py",
    "beam_jobs/overlap/fingerprints.py",
    "beam_jobs/overlap/report.py",
    "beam_jobs/overlap/evalsets.py",
    "beam_jobs/overlap/mask.py",
    "beam_jobs/overlap/config.py",
)


def modules():
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_functions_stay_small(path):
    source = path.read_text(encoding="utf-8")
    assert len(source.splitlines()) <= MAX_MODULE_LINES
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{node.name}: {length} lines"


def test_few_modules_directly_in_beam_jobs():
    top = sorted(p.name for p in (ROOT / "beam_jobs").glob("*.py"))
    assert len(top) <= 8, top


@pytest.mark.parametrize("rel", PURE)
def test_pure_modules_do_not_import_beam(rel):
    tree = ast.parse((ROOT / rel).read_text(encoding="utf-8"))
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(name.startswith("apache_beam") for name in imported), rel
