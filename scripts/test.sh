#!/usr/bin/env bash
# Creates a virtual environment if missing, installs attnlab with its test extra, and runs the
# whole test suite. Extra arguments go to pytest (e.g. scripts/test.sh tests/models -k lstm).
#   PYTHON               the interpreter for a new environment (default python3.11)
#   ATTNLAB_VENV         the environment's folder (default .venv)
#   ATTNLAB_TEST_EXTRA   the extra to install (default test; test-notorch: without PyTorch)
#   ATTNLAB_TEST_WORKERS pytest-xdist workers (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
VENV=${ATTNLAB_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip setuptools wheel
"$VENV/bin/python" -m pip install -q -e ".[${ATTNLAB_TEST_EXTRA:-test}]"
export PYTHONHASHSEED=0
exec "$VENV/bin/python" -m pytest -n "${ATTNLAB_TEST_WORKERS:-2}" --dist loadfile -q "$@"
