"""check_config: config.json written once; a different config refused with its fields listed."""

from __future__ import annotations

import glob
import json
import os

import ml_collections
import pytest

from attnlab.train import checkpoint
from attnlab.train import workdir_config

CONFIG = {"model": {"name": "lstm", "hidden_size": 32}, "task": {"name": "copy"},
          "num_steps": 100, "log_every": 10, "seed": 0, "eval_lengths": [8, 16]}


def _changed(**dotted):
  config = json.loads(json.dumps(CONFIG))
  for key, value in dotted.items():
    *path, last = key.split("__")
    node = config
    for p in path:
      node = node[p]
    node[last] = value
  return config


def test_check_config_writes_then_accepts_same(tmp_path):
  assert workdir_config.check_config(str(tmp_path), CONFIG) == {}
  assert json.load(open(tmp_path / "config.json")) == CONFIG
  assert workdir_config.check_config(str(tmp_path), CONFIG) == {}


def test_check_config_refuses_different_config(tmp_path):
  workdir_config.check_config(str(tmp_path), CONFIG)
  new = _changed(model__hidden_size=64, task__name="parity", seed=1)
  with pytest.raises(ValueError) as e:
    workdir_config.check_config(str(tmp_path), new)
  msg = str(e.value)
  assert "model.hidden_size: 32 -> 64" in msg
  assert "task.name: 'copy' -> 'parity'" in msg
  assert "seed: 0 -> 1" in msg
  assert "num_steps" not in msg
  assert json.load(open(tmp_path / "config.json")) == CONFIG


def test_check_config_neutral_fields_and_overrides(tmp_path):
  workdir_config.check_config(str(tmp_path), CONFIG)
  assert workdir_config.check_config(str(tmp_path), _changed(log_every=1)) == {"log_every": (10, 1)}
  with pytest.raises(ValueError, match="num_steps: 100 -> 200"):
    workdir_config.check_config(str(tmp_path), _changed(num_steps=200))
  new = _changed(num_steps=200)
  workdir_config.check_config(str(tmp_path), new, allow_mismatch=True)
  assert json.load(open(tmp_path / "config.json")) == new
  assert glob.glob(str(tmp_path / "config.old-*.json")), "previous config kept"

  open(tmp_path / "metrics.jsonl", "w").write("{}\n")
  workdir_config.check_config(str(tmp_path), CONFIG, overwrite=True)
  assert os.listdir(tmp_path) == ["config.json"]
  old = glob.glob(f"{tmp_path}.old-*")
  assert len(old) == 1 and os.path.exists(os.path.join(old[0], "metrics.jsonl"))


def test_checkpoint_module_exports_check_config_and_accepts_config_dict(tmp_path):
  assert checkpoint.check_config is workdir_config.check_config
  config = ml_collections.ConfigDict(CONFIG)
  assert checkpoint.check_config(str(tmp_path), config) == {}
  assert checkpoint.check_config(str(tmp_path), CONFIG) == {}, "same content, other type"


def test_a_config_json_from_before_the_init_field_reads_as_flax(tmp_path):
  # Runs saved before model.init existed were trained with Flax's initialisation.
  with open(tmp_path / "config.json", "w") as f:
    json.dump(CONFIG, f)
  assert workdir_config.check_config(str(tmp_path), _changed(model__init="flax")) == {}
  with pytest.raises(ValueError, match=r"model.init: 'flax' -> 'torch'"):
    workdir_config.check_config(str(tmp_path), _changed(model__init="torch"))


def test_a_run_saved_before_early_stopping_reads_as_patience_0(tmp_path):
  from attnlab.train import convergence  # pylint: disable=import-outside-toplevel
  workdir_config.check_config(str(tmp_path), CONFIG)  # written without the stopping fields
  stopping = dict(val_seed=convergence.VAL_SEED, solve_accuracy=convergence.SOLVE_ACCURACY,
                  solve_mse=convergence.SOLVE_MSE, converge_epsilon=0.5)
  assert workdir_config.check_config(str(tmp_path), _changed(patience=0, **stopping)) == {
      "converge_epsilon": (convergence.CONVERGE_EPSILON, 0.5)}  # result-neutral
  with pytest.raises(ValueError, match="patience: 0 -> 3"):
    workdir_config.check_config(str(tmp_path), _changed(patience=3, **stopping))


def test_eval_every_is_neutral_only_without_early_stopping(tmp_path):
  off, on = str(tmp_path / "off"), str(tmp_path / "on")
  workdir_config.check_config(off, _changed(patience=0, eval_every=5))
  assert workdir_config.check_config(off, _changed(patience=0, eval_every=7)) == {
      "eval_every": (5, 7)}
  workdir_config.check_config(on, _changed(patience=3, eval_every=5))
  with pytest.raises(ValueError, match="eval_every: 5 -> 7"):  # it would move the stop
    workdir_config.check_config(on, _changed(patience=3, eval_every=7))
