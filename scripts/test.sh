#!/usr/bin/env bash
# Creates .venv if missing, installs attnlab with its test extra, and runs the whole test suite.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/models -k lstm).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip setuptools wheel
.venv/bin/python -m pip install -q -e '.[test]'
export PYTHONHASHSEED=0
exec .venv/bin/python -m pytest -n "${ATTNLAB_TEST_WORKERS:-2}" --dist loadfile -q "$@"
