"""scripts/train.py trains issue 29's families from experiments/base.py's smoke config: xLSTM with
both block kinds (its own blocks, sLSTM and mLSTM layers), Mamba-2 with negative eigenvalues (a
mixer in the residual block, the field set from the command line) and a hybrid of the four new
mixers by name (every registered name trains in tests/train/step_test.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(ROOT, "scripts", "train.py")
BASE = os.path.join(ROOT, "experiments", "base.py")
ENV = {**os.environ, "JAX_PLATFORMS": "cpu",
       "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}


@pytest.mark.parametrize("model, fields", [
    ("xlstm", ["--config.model.num_layers=2", "--config.model.ratio=1:1"]),
    ("mamba2", ["--config.model.allow_negative_eigenvalues=true"]),
    ("hybrid", ["--config.model.layers=mamba2,gated_deltanet,slstm,mlstm",
                "--config.model.num_heads=2"]),
])
def test_smoke_run(model, fields, tmp_path):
  proc = subprocess.run([sys.executable, TRAIN, f"--config={BASE}:model={model},task=mqar,smoke",
                         "--config.num_steps=4", "--config.eval_every=4", *fields,
                         f"--workdir={tmp_path}"], capture_output=True, text=True, env=ENV,
                        timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(tmp_path / "summary.json") as f:
    assert json.load(f)["status"] == "done"
  with open(tmp_path / "config.json") as f:
    model_section = json.load(f)["model"]
  assert model_section["name"] == model
  if model == "mamba2":
    assert model_section["allow_negative_eigenvalues"] is True
  if model == "hybrid":
    assert model_section["layers"] == "mamba2,gated_deltanet,slstm,mlstm"
