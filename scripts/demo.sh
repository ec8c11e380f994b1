#!/usr/bin/env bash
# The one-command demo: creates .venv if missing, installs attnlab, and runs the default experiment
# (experiments/distance.py: accuracy against dependency distance for simple RNN, LSTM, GRU, minGRU
# and a Transformer, parameter-matched) as a sweep sized for a 2-core CPU (`:demo`, ~2-3 minutes
# once .venv is installed),
# then prints the Markdown table and writes the figure.
#   scripts/demo.sh                 # results in runs/demo/
#   ATTNLAB_DEMO_DIR=/tmp/d scripts/demo.sh
# Re-running skips finished trials (delete the directory to start over). The full-size version:
#   scripts/sweep.py --config experiments/distance.py --workdir runs/distance --workers 2
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip setuptools wheel
.venv/bin/python -m pip install -q -e .

OUT=${ATTNLAB_DEMO_DIR:-runs/demo}
WORKERS=${ATTNLAB_DEMO_WORKERS:-2}
start=$(date +%s)
# Exit status 1 means some trial failed; the table (which names it) and the figure still follow.
status=0
.venv/bin/python scripts/sweep.py --config experiments/distance.py:demo --workdir "$OUT" \
  --workers "$WORKERS" || status=$?
if [ "$status" -gt 1 ]; then exit "$status"; fi
.venv/bin/python scripts/plot.py --workdir "$OUT" >/dev/null
echo
echo "demo finished in $(( $(date +%s) - start ))s"
echo "  table:   $OUT/results.md"
echo "  figure:  $OUT/accuracy_vs_distance.png"
echo "  results: $OUT/results.csv (one row per trial); each trial's run in $OUT/<trial>/"
echo "  inspect one: .venv/bin/python scripts/evaluate.py --workdir $OUT/lstm-distance32-seed0 --gradient_lag"
exit "$status"
