"""train_and_evaluate end to end: workdir files, bit-identical reruns, data seed matters."""

from __future__ import annotations

import json
import os

import pytest

from attnlab.train import loop
from tests.train import helpers

TIMING = ("steps_per_s", "tokens_per_s")  # wall-clock fields, the only ones allowed to differ


def _read_jsonl(path):
  with open(path) as f:
    return [json.loads(line) for line in f]


def _metrics(workdir):
  return [{k: v for k, v in r.items() if k not in TIMING}
          for r in _read_jsonl(os.path.join(workdir, "metrics.jsonl"))]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  out = {}
  for name, data_seed in (("a", 0), ("b", 0), ("c", 1)):
    workdir = str(tmp_path_factory.mktemp(f"run_{name}"))
    config = helpers.tiny_config("lstm", "copy", data_seed=data_seed, num_steps=12,
                                 log_every=3, eval_every=6, checkpoint_every=6)
    out[name] = (workdir, loop.train_and_evaluate(config, workdir))
  return out


def test_workdir_files(runs):
  workdir, summary = runs["a"]
  for name in ("config.json", "metrics.jsonl", "eval.jsonl", "summary.json", "checkpoints"):
    assert os.path.exists(os.path.join(workdir, name)), name
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(workdir, "tb")))
  metrics = _read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  assert [r["step"] for r in metrics] == [3, 6, 9, 12]
  for key in ("loss", "accuracy", "learning_rate", "grad_norm", "param_norm", "update_norm",
              "steps_per_s", "tokens_per_s"):
    assert key in metrics[-1], key
  evals = _read_jsonl(os.path.join(workdir, "eval.jsonl"))
  assert [r["step"] for r in evals] == [6, 12]
  assert set(evals[-1]["lengths"]) == {"8"}
  assert {"loss", "accuracy", "sequence_accuracy"} <= set(evals[-1]["lengths"]["8"])
  with open(os.path.join(workdir, "summary.json")) as f:
    on_disk = json.load(f)
  assert on_disk["status"] == "done" and on_disk["step"] == 12
  assert on_disk["param_count"] == summary["param_count"] > 0
  assert on_disk["final_eval"] == evals[-1]
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["model"]["name"] == "lstm"


def test_same_seeds_are_bit_identical(runs):
  assert _metrics(runs["a"][0]) == _metrics(runs["b"][0])
  assert (_read_jsonl(os.path.join(runs["a"][0], "eval.jsonl"))
          == _read_jsonl(os.path.join(runs["b"][0], "eval.jsonl")))


def test_data_seed_changes_metrics(runs):
  a, c = _metrics(runs["a"][0]), _metrics(runs["c"][0])
  assert [r["loss"] for r in a] != [r["loss"] for r in c]


def test_finished_run_is_not_retrained(runs):
  # Restarting a finished run restores its last checkpoint and trains no further.
  workdir, _ = runs["a"]
  before = _read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  config = helpers.tiny_config("lstm", "copy", num_steps=12, log_every=3, eval_every=6,
                               checkpoint_every=6)
  summary = loop.train_and_evaluate(config, workdir)
  assert summary["status"] == "done" and summary["step"] == 12
  assert _read_jsonl(os.path.join(workdir, "metrics.jsonl")) == before


def test_nonfinite_loss_stops_without_saving_it(tmp_path):
  config = helpers.tiny_config("lstm", "copy", num_steps=6, log_every=3, checkpoint_every=1,
                               **{"optimizer.learning_rate": 1e30, "optimizer.warmup_steps": 0,
                                  "optimizer.decay": "constant", "optimizer.clip_norm": 0.0})
  workdir = str(tmp_path)
  with pytest.raises(loop.NonFiniteLossError, match=r"at step (\d+);") as e:
    loop.train_and_evaluate(config, workdir)
  bad_step = int(str(e.value).split("at step ")[1].split(";")[0])
  assert 1 <= bad_step <= 6
  with open(os.path.join(workdir, "summary.json")) as f:
    assert json.load(f)["status"] == "nan"
  saved = [int(n) for n in os.listdir(os.path.join(workdir, "checkpoints")) if n.isdigit()]
  assert all(s < bad_step for s in saved), (saved, bad_step)
