"""experiments/state_tracking.py, flip_flop.py and listops.py at :smoke, end to end through
scripts/sweep.py (and flip-flop's out-of-distribution evaluation)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from attnlab import configs
from attnlab.sweeps import results

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "JAX_PLATFORMS": "cpu"}
pytestmark = pytest.mark.slow  # two training runs per experiment


def sweep(name, tmp_path):
  workdir = tmp_path / name
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "sweep.py"),
                         f"--config={ROOT}/experiments/{name}.py:smoke", f"--workdir={workdir}",
                         "--workers=2"], capture_output=True, text=True, timeout=900, env=ENV)
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = results.read_csv(str(workdir / "results.csv"))
  assert rows and all(r["status"] == "done" for r in rows), rows
  return workdir, rows


def test_state_tracking_smoke_sweep(tmp_path):
  _, rows = sweep("state_tracking", tmp_path)
  assert {(r["arg.group"], r["arg.model"], r["model.num_layers"]) for r in rows} == {
      ("s5", "lstm", 1), ("s5", "decoder", 1)}
  assert all(0 <= r["accuracy"] <= 1 and "sequence_accuracy" in r for r in rows)


def test_flip_flop_smoke_sweep_and_error_rates_out_of_distribution(tmp_path):
  workdir, rows = sweep("flip_flop", tmp_path)
  assert {r["arg.model"] for r in rows} == {"lstm", "decoder"}
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "experiments", "flip_flop.py"),
                         f"--workdir={workdir}"], capture_output=True, text=True, timeout=600,
                        env=ENV)
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.strip().splitlines()
  assert lines[0].startswith("| model | error rate, in_distribution | error rate, sparse")
  assert {line.split("|")[1].strip() for line in lines[2:]} == {"lstm", "decoder"}
  for row in rows:
    with open(workdir / row["trial"] / "ood.json") as f:
      ood = {r["variant"]: r for r in json.load(f)}
    assert set(ood) == {"in_distribution", "sparse", "dense"}
    # In distribution is the training config: it reproduces the sweep's final evaluation.
    assert ood["in_distribution"]["sequence_accuracy"] == pytest.approx(
        row["sequence_accuracy"], abs=1e-6)


def test_listops_smoke_sweep(tmp_path):
  _, rows = sweep("listops", tmp_path)
  assert {r["arg.model"] for r in rows} == {"lstm", "decoder"}
  assert all(0 <= r["accuracy"] <= 1 for r in rows)


def test_flip_flop_error_rates_by_hand():
  flip_flop = configs.load_module(os.path.join(ROOT, "experiments", "flip_flop.py"))
  records = [{"model": "lstm", "variant": "sparse", "sequence_accuracy": 0.9},
             {"model": "lstm", "variant": "sparse", "sequence_accuracy": 0.7},
             {"model": "lstm", "variant": "dense", "sequence_accuracy": 1.0}]
  assert flip_flop.error_rates(records) == {"lstm": {"sparse": pytest.approx(0.2), "dense": 0.0}}
  assert flip_flop.variant_fields("sparse") == {"p_write": "0.01", "p_ignore": "0.98",
                                                "p_read": "0.01"}
