"""Bad configs fail in Python, before anything compiles, with a message naming the field."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import pytest

from attnlab.train import config as config_lib
from attnlab.train import loop
from tests.train import helpers


@pytest.mark.parametrize("overrides, message", [
    ({"batch_size": 6}, "batch_size=6 is not divisible by the device count (4)"),
    ({"model.name": "lstmm"}, "model.name='lstmm'"),
    ({"task.name": "copyy"}, "task.name='copyy'"),
    ({"optimizer.name": "adamax"}, "optimizer.name='adamax'"),
    ({"optimizer.decay": "step"}, "optimizer.decay='step'"),
    ({"compute_dtype": "float16"}, "compute_dtype='float16'"),
    ({"parallelism": "pjit"}, "parallelism='pjit'"),
    ({"train_min_length": 2}, "train_min_length: length 2 is below task 'copy'"),
    ({"num_steps": 0}, "num_steps=0"),
    ({"optimizer.grad_accum_steps": 3}, "optimizer.grad_accum_steps=3"),
    ({"patience": -1}, "patience=-1; allowed: an integer >= 0 (0: never stop early)"),
    ({"solve_accuracy": 0.0}, "solve_accuracy=0.0; allowed: 0 < solve_accuracy <= 1"),
    ({"solve_accuracy": 1.5}, "solve_accuracy=1.5; allowed: 0 < solve_accuracy <= 1"),
    ({"solve_mse": 0.0}, "solve_mse=0.0; allowed: solve_mse > 0"),
    ({"converge_epsilon": -0.1}, "converge_epsilon=-0.1; allowed: converge_epsilon >= 0"),
    ({"val_seed": 1234}, "val_seed=1234 equals eval_seed: the validation batches must differ"),
])
def test_bad_config_raises_before_compiling(tmp_path, monkeypatch, overrides, message):
  def no_compiling(*args, **kwargs):
    raise AssertionError("compiled before validating the config")
  monkeypatch.setattr(jax, "jit", no_compiling)
  monkeypatch.setattr(jax, "pmap", no_compiling)
  workdir = str(tmp_path / "run")
  with pytest.raises(ValueError) as e:
    loop.train_and_evaluate(helpers.tiny_config("lstm", "copy", **overrides), workdir)
  assert message in str(e.value)
  assert not os.path.exists(workdir)  # nothing written either


def test_heads_must_divide_d_model():
  with pytest.raises(ValueError, match=r"model.d_model=10 is not divisible by model.num_heads=4"):
    config_lib.build(helpers.tiny_config("transformer", "copy", **{"model.d_model": 10,
                                                                  "model.num_heads": 4}))


def test_unknown_override_names_closest_fields():
  config = helpers.tiny_config()
  config_lib.check_overrides(config, ["optimizer.learning_rate", "model.d_model", "seed"])
  with pytest.raises(ValueError, match=r"no field 'learnin_rate'.*optimizer.learning_rate"):
    config_lib.check_overrides(config, ["optimizer.learnin_rate"])
  with pytest.raises(ValueError, match=r"no field 'batchsize'.*batch_size"):
    config_lib.check_overrides(config, ["batchsize"])
  with pytest.raises(ValueError, match=r"config.model has no field 'dmodel'.*model.d_model"):
    config_lib.check_overrides(config, ["model.dmodel"])


def test_train_script_reports_unknown_override(tmp_path):
  result = subprocess.run(
      [sys.executable, os.path.join(helpers.REPO, "scripts", "train.py"),
       f"--config={helpers.DEFAULT}:model=lstm,task=copy,smoke", f"--workdir={tmp_path}",
       "--config.optimizer.learnin_rate=0.1"],
      capture_output=True, text=True, timeout=120, env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert result.returncode != 0
  assert "optimizer.learning_rate" in result.stderr and "learnin_rate" in result.stderr
  assert not os.listdir(tmp_path)


def test_train_script_reports_bad_patience_in_one_line(tmp_path):
  result = subprocess.run(
      [sys.executable, os.path.join(helpers.REPO, "scripts", "train.py"),
       f"--config={helpers.DEFAULT}:model=lstm,task=copy,smoke", f"--workdir={tmp_path}",
       "--config.patience=-2"],
      capture_output=True, text=True, timeout=120, env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1] == (
      "train: error: patience=-2; allowed: an integer >= 0 (0: never stop early)")
  assert not os.listdir(tmp_path)
