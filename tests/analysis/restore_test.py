"""Evaluation of a saved run: one tiny Transformer trained in-process, shared by every test here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from attnlab.analysis import workdir as workdir_lib
from attnlab.analysis import restore
from attnlab import configs
from attnlab.train import loop
from tests.analysis.attention_maps_test import assert_png

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("eval") / "run")
  config = configs.load_module(os.path.join(ROOT, "experiments", "distance.py")).get_config("smoke,model=transformer")
  config.model.target_params = 0  # a fixed width: no sizing search on every restore
  assert (config.num_steps, config.eval_every, config.checkpoint_every) == (20, 10, 10)
  summary = loop.train_and_evaluate(config, workdir)
  with open(os.path.join(workdir, "eval.jsonl")) as f:
    logged = {r["step"]: r for r in map(json.loads, f)}
  return workdir, config, logged, summary


def test_evaluation_reproduces_the_logged_metrics(trained):
  workdir, config, logged, summary = trained
  assert sorted(logged) == [10, 20]
  # The validation curve at each checkpoint, and the test evaluation of the last one.
  expected = [(10, "val", logged[10]), (20, "val", logged[20]), (20, "test", summary["final_eval"])]
  for checkpoint, split, want in expected:
    run = restore.load_run(workdir, checkpoint)
    record = restore.evaluate_lengths(run, config.eval_lengths, split=split)
    assert run.step == checkpoint
    for length, metrics in want["lengths"].items():
      for name, value in metrics.items():
        np.testing.assert_allclose(record["lengths"][length][name], value, rtol=1e-6, atol=1e-7)
  assert summary["final_eval"]["lengths"] != logged[20]["lengths"]  # other batches
  assert restore.load_run(workdir, "latest").step == 20
  accuracy = {s: r["lengths"]["5"]["accuracy"] for s, r in logged.items()}
  best = restore.load_run(workdir, "best").step
  assert accuracy[best] == max(accuracy.values())


def test_report_with_new_lengths_attention_maps_and_gradient_lag(trained, tmp_path):
  workdir = trained[0]
  out = workdir_lib.evaluate_workdir(workdir, checkpoint="latest", lengths=["9", "5"],
                                attention_maps_n=2, gradient_lag=True,
                                plots_dir=str(tmp_path))
  json.dumps(out)  # JSON-ready
  assert out["step"] == 20 and out["model"] == "transformer"
  assert sorted(out["lengths"], key=int) == ["5", "9"]  # 9 was never trained on
  for name in ("accuracy", "loss"):
    mean = np.mean([out["lengths"][n][name] for n in ("5", "9")])
    np.testing.assert_allclose(out["mean"][name], mean, rtol=1e-6)
  maps = out["attention_maps"]
  assert maps["length"] == 5 and len(maps["files"]) == 2  # 2 examples x 1 layer
  lag = out["gradient_lag"]
  assert lag["length"] == 9 and lag["distances"] == list(range(9))
  assert all(g >= 0 for g in lag["mean_grad_norm"])
  for path in maps["files"] + [lag["file"]]:
    assert_png(path)


def test_a_run_saved_before_the_init_field_restores_as_flax(trained, tmp_path):
  workdir = trained[0]
  assert restore.load_run(workdir).setup.model_fields["init"] == "torch"
  old = str(tmp_path / "old")
  shutil.copytree(workdir, old)
  with open(os.path.join(old, "config.json")) as f:
    saved = json.load(f)
  del saved["model"]["init"]
  for name in ("val_seed", "solve_accuracy", "solve_mse", "patience", "converge_epsilon"):
    del saved[name]  # nor the early-stopping fields
  with open(os.path.join(old, "config.json"), "w") as f:
    json.dump(saved, f)
  out = workdir_lib.evaluate_workdir(old, checkpoint=20)
  assert out["init"] == "flax" and out["step"] == 20
  assert restore.load_config(old).patience == 0  # it never stopped early


def test_bad_input_raises_clearly(trained, tmp_path):
  workdir = trained[0]
  with pytest.raises(ValueError, match="no config.json"):
    restore.load_run(str(tmp_path))
  bare = tmp_path / "bare"
  bare.mkdir()
  shutil.copy(os.path.join(workdir, "config.json"), bare / "config.json")
  with pytest.raises(ValueError, match="holds no checkpoint"):
    restore.load_run(str(bare))
  with pytest.raises(ValueError, match=r"no such step.*saved steps: \[10, 20\]"):
    restore.load_run(workdir, 7)
  with pytest.raises(ValueError, match="allowed: 'best', 'latest' or a step number"):
    restore.load_run(workdir, "newest")
  for bad in (["0"], ["-3"], ["abc"], ["5", "2.5"]):
    with pytest.raises(ValueError, match="is not a positive integer"):
      workdir_lib.evaluate_workdir(workdir, lengths=bad)
  with pytest.raises(ValueError, match="below task 'distant_dependency'"):
    workdir_lib.evaluate_workdir(workdir, lengths=[3])


def test_another_task_config_of_the_same_task(trained):
  workdir, config, _, _ = trained
  out = workdir_lib.evaluate_workdir(workdir, task_config={"noise_rate": "0.9"})
  assert out["task_fields"]["noise_rate"] == 0.9
  assert out["task_fields"]["distance"] == config.task.distance
  plain = workdir_lib.evaluate_workdir(workdir)
  assert plain["task_fields"]["noise_rate"] == config.task.noise_rate
  assert out["lengths"] != plain["lengths"]
  with pytest.raises(ValueError, match="unknown config field 'noise'"):
    workdir_lib.evaluate_workdir(workdir, task_config={"noise": "0.9"})


def _evaluate_cli(*args):
  return subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "evaluate.py"), *args],
                        capture_output=True, text=True, timeout=300)


def test_cli_exits_nonzero_with_the_message(trained, tmp_path):
  workdir = trained[0]
  cases = [(["--workdir", workdir, "--lengths", "5,0"], "'0' is not a positive integer"),
           (["--workdir", str(tmp_path)], "no config.json")]
  for args, message in cases:
    result = _evaluate_cli(*args)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr
