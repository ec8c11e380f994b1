"""results.py: a trial's row from its files, the column order, the grid keys, the CSV round trip."""

from __future__ import annotations

import json
import os

from attnlab.sweeps import results, spec

SUMMARY = {
    "status": "done", "step": 40, "param_count": 900, "block": "stacked", "init": "torch",
    "state_size": 16, "solved_step": 24, "converged": True,
    "final_eval": {"step": 40, "lengths": {"16": {"accuracy": 0.5, "loss": 2.0},
                                           "8": {"accuracy": 1.0, "loss": 1.0}}},
    "test_accuracy": 0.75, "test_loss": 1.5, "test_accuracy@8": 1.0, "test_accuracy@16": 0.5,
    "val_accuracy": 0.625, "val_loss": 1.25, "val_accuracy@8": 1.0, "val_accuracy@16": 0.25,
    "wall_s": 3.0, "eval_s": 0.1, "compile_s": 1.0}


def _trial_dir(root, name, summary, evals=()):
  path = os.path.join(root, name)
  os.makedirs(path)
  with open(os.path.join(path, "summary.json"), "w") as f:
    json.dump(summary, f)
  with open(os.path.join(path, "eval.jsonl"), "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in evals)
  return spec.Trial(name, {"arg.model": "lstm", "val_seed": 7, "seed": 0})


def test_row_carries_outcome_and_both_splits(tmp_path):
  trial = _trial_dir(str(tmp_path), "t", SUMMARY)
  row = results.trial_row(str(tmp_path), trial)
  assert (row["solved_step"], row["converged"]) == (24, True)
  for key in ("test_accuracy", "test_loss", "test_accuracy@8", "test_accuracy@16", "val_accuracy",
              "val_loss", "val_accuracy@8", "val_accuracy@16"):
    assert row[key] == SUMMARY[key], key
  # The report's columns: the test evaluation under its former names.
  assert (row["accuracy"], row["accuracy@8"], row["loss@16"]) == (0.75, 1.0, 2.0)
  assert "eval_s" not in row and "compile_s" not in row


def test_columns_order_and_grid_keys(tmp_path):
  trial = _trial_dir(str(tmp_path), "t", SUMMARY)
  row = results.trial_row(str(tmp_path), trial)
  cols = results.columns([row])
  assert cols == [
      "trial", "status", "arg.model", "val_seed", "seed", "step", "solved_step", "converged",
      "accuracy", "loss", "test_accuracy", "test_loss", "val_accuracy", "val_loss",
      "accuracy@8", "accuracy@16", "loss@8", "loss@16", "test_accuracy@8", "test_accuracy@16",
      "val_accuracy@8", "val_accuracy@16",
      "block", "init", "state_size", "param_count", "wall_s", "tokens_per_s", "peak_mb"]
  assert results.grid_keys([row]) == ["arg.model", "val_seed"]  # a seed field, not a metric


def test_a_run_from_before_the_split_reads_its_logged_test_evaluations(tmp_path):
  old = {k: v for k, v in SUMMARY.items() if k in ("status", "step", "param_count")}
  evals = [{"step": 40, "lengths": {"8": {"accuracy": 0.9}}},
           {"step": 40, "split": "val", "lengths": {"8": {"accuracy": 0.1}}}]
  row = results.trial_row(str(tmp_path), _trial_dir(str(tmp_path), "old", old, evals))
  assert row["accuracy"] == 0.9 and row["solved_step"] is None and row["converged"] is None
  assert "val_accuracy" not in row and "test_accuracy" not in row


def test_csv_round_trip_is_exact(tmp_path):
  trial = _trial_dir(str(tmp_path), "t", SUMMARY)
  rows = [results.trial_row(str(tmp_path), trial),
          {"trial": "u", "status": "done", "arg.model": "gru", "val_seed": 7, "seed": 1,
           "solved_step": None, "converged": False, "accuracy": 0.1 + 0.2, "wall_s": 1e-5},
          {"trial": "v", "status": "nan", "arg.model": "rnn", "seed": 0, "error": "12"}]
  path = str(tmp_path / "results.csv")
  results.write_csv(rows, path)
  back = results.read_csv(path)
  for want, got in zip(rows, back):
    assert {k: v for k, v in got.items() if v is not None} == {
        k: v for k, v in want.items() if v is not None}
  results.write_csv(back, str(tmp_path / "again.csv"))
  assert open(path).read() == open(tmp_path / "again.csv").read()
  assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
  assert back[2]["status"] == "nan" and back[2]["error"] == "12"  # text columns stay text
