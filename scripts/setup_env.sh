#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install the package with its test
# extras. torch is pinned to the CPU build this kind of machine keeps on disk, so set-up takes
# seconds; the package itself accepts any torch>=2.1 (install yours first to keep it).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
if ! python -c "import torch" 2>/dev/null; then
  python -m pip install -q "torch==2.13.0"
fi
python -m pip install -q -e ".[lm,test]"
# Beam's Prism runner (Go), for --runner PrismRunner and the Prism tests: built once into
# ~/.cache/corpus-lm/prism/ (about 100-180 s), reused after. Without Go those tests skip.
if command -v go >/dev/null 2>&1; then
  bash scripts/prism.sh >/dev/null || echo "warning: Prism was not built (see above)" >&2
fi
