"""scripts/benchmarks/torch_control.py through its command: an experiment's cell trained in
PyTorch, with overrides, and a bad override refused before any training."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
SCRIPT = os.path.join(ROOT, "scripts", "benchmarks", "torch_control.py")
CONFIG = os.path.join(ROOT, "experiments", "mqar.py:smoke,model=gru")


def _run(*args, config=CONFIG):
  return subprocess.run([sys.executable, SCRIPT, "--config", config, *args], capture_output=True,
                        text=True, timeout=300, check=False)


def test_trains_the_cell_with_its_overrides_and_prints_one_row_per_run():
  proc = _run("--set", "model.d_model=16", "--set", "num_steps=12", "--lrs", "1e-3", "3e-3")
  assert proc.returncode == 0, proc.stderr
  rows = [json.loads(line) for line in proc.stdout.splitlines()]
  assert [(r["model"], r["d_model"], r["lr"], r["steps"]) for r in rows] == [
      ("gru", 16, 1e-3, 12), ("gru", 16, 3e-3, 12)]
  assert all(0.0 <= r["test_accuracy"] <= 1.0 and r["first_loss"] > 0 for r in rows)


def test_a_regression_cell_trains_on_squared_error_and_reports_its_mse():
  proc = _run("--set", "num_steps=12", "--lrs", "1e-3",
              config=os.path.join(ROOT, "experiments", "adding.py:smoke,model=lstm,length=8"))
  assert proc.returncode == 0, proc.stderr
  (row,) = [json.loads(line) for line in proc.stdout.splitlines()]
  assert row["model"] == "lstm" and "test_accuracy" not in row
  # The adding problem's targets are sums of two values in [0, 1]: an untrained model's squared
  # error is positive and far below 4.
  assert 0.0 < row["test_mse"] < 4.0 and 0.0 < row["first_loss"] < 4.0


def test_an_unknown_field_is_one_line_before_training():
  proc = _run("--set", "model.nope=1")
  assert proc.returncode == 2 and not proc.stdout
  assert proc.stderr.strip().splitlines()[-1].endswith("--set model.nope: no such config field")
