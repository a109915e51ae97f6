#!/usr/bin/env bash
# Build Beam's Prism runner (Go) at the version of the installed apache-beam, into a cache
# folder outside the work tree, and print the binary's path on the last line. A build that is
# already there is reused (about 0.1 s); a fresh one takes about 100 s and 66 MB.
#
#   bash scripts/prism.sh            # -> ~/.cache/corpus-lm/prism/v2.77.0/prism
#
# `beam_jobs.prepare --runner PrismRunner` finds that binary by itself (beam_jobs/runtime/
# prism.py); --prism_location BINARY still wins. Environment: PYTHON (the interpreter whose
# apache-beam sets the version), PRISM_CACHE (the cache root), PRISM_VERSION (e.g. v2.77.0).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${PYTHON:-}" ]; then
  :
elif [ -z "${VIRTUAL_ENV:-}" ] && [ -x "${VENV:-.venv}/bin/python" ]; then
  PYTHON="${VENV:-.venv}/bin/python"
else
  PYTHON=python3
fi
if [ -z "${PRISM_VERSION:-}" ]; then
  if ! beam=$("$PYTHON" -c 'import apache_beam; print(apache_beam.__version__)' 2>/dev/null); then
    echo "error: prism.sh: apache-beam is not importable by $PYTHON (run scripts/setup_env.sh" \
      "first, or set PRISM_VERSION=vX.Y.Z)" >&2
    exit 1
  fi
  PRISM_VERSION="v$beam"
fi
root="${PRISM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/corpus-lm/prism}"
dest="$root/$PRISM_VERSION"
binary="$dest/prism"

if [ -x "$binary" ]; then
  echo "$binary"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "error: prism.sh: Go is not on PATH; install Go 1.23+ (https://go.dev/doc/install) or" \
    "pass --prism_location BINARY to the pipeline" >&2
  exit 1
fi
case "$PRISM_VERSION" in
  *dev* | *rc*)
    echo "error: prism.sh: apache-beam $PRISM_VERSION is not a release; set PRISM_VERSION" >&2
    exit 1 ;;
esac

mkdir -p "$dest"
staging=$(mktemp -d "$dest/.build.XXXXXX")
trap 'rm -rf "$staging"' EXIT
echo "building Prism $PRISM_VERSION with $(go version | cut -d' ' -f3) (about 100 s on 2 cores)" >&2
started=$SECONDS
# CGO off: a static binary, and no C compiler needed on the machine.
if ! GOBIN="$staging" CGO_ENABLED=0 \
    go install "github.com/apache/beam/sdks/v2/go/cmd/prism@$PRISM_VERSION" >"$staging/log" 2>&1; then
  tail -n 20 "$staging/log" >&2
  echo "error: prism.sh: go install of Prism $PRISM_VERSION failed (log above)" >&2
  exit 1
fi
# Atomic: a concurrent run or an interrupted build never leaves a half-written binary.
mv -f "$staging/prism" "$binary"
echo "built in $((SECONDS - started)) s" >&2
echo "$binary"
