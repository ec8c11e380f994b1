"""recorded.py: which rows of an earlier results.csv count, and how they merge with a workdir."""

from __future__ import annotations

import json
import os

import pytest

from attnlab.sweeps import recorded, results, spec

TRIALS = spec.make_trials([{"arg.model": m, "optimizer.learning_rate": 1e-3, "seed": s}
                           for m in ("lstm", "gru") for s in (0, 1)])


def _rows():
  statuses = {"lstm-learning_rate0.001-seed0": "done", "lstm-learning_rate0.001-seed1": "nan",
              "gru-learning_rate0.001-seed0": "failed", "gru-learning_rate0.001-seed1": "not run"}
  rows = []
  for t in TRIALS:
    row = {"trial": t.name, "status": statuses[t.name], **t.overrides}
    if statuses[t.name] in ("done", "nan"):
      row.update(step=10, accuracy=0.1 + 0.2, solved_step=None, converged=False)
    else:
      row["error"] = "boom" if statuses[t.name] == "failed" else ""
    rows.append(row)
  return rows


def test_read_keeps_the_finished_rows_as_a_fresh_row_holds_them(tmp_path):
  path = str(tmp_path / "results.csv")
  results.write_csv(_rows(), path)
  got = recorded.read(path, TRIALS)
  assert sorted(got) == ["lstm-learning_rate0.001-seed0", "lstm-learning_rate0.001-seed1"]
  row = got["lstm-learning_rate0.001-seed0"]
  assert row == {"trial": "lstm-learning_rate0.001-seed0", "status": "done", "arg.model": "lstm",
                 "optimizer.learning_rate": 1e-3, "seed": 0, "step": 10,
                 "accuracy": 0.1 + 0.2, "converged": False}  # empty cells dropped
  assert [t.name for t in recorded.pending(TRIALS, got)] == [
      "gru-learning_rate0.001-seed0", "gru-learning_rate0.001-seed1"]


def test_read_refuses_another_sweeps_file(tmp_path):
  path = str(tmp_path / "results.csv")
  rows = _rows()
  rows[0]["optimizer.learning_rate"] = 3e-3
  results.write_csv(rows, path)
  with pytest.raises(ValueError, match=r"trial lstm-learning_rate0.001-seed0 has "
                     r"optimizer.learning_rate=0.003 there but 0.001 in this sweep"):
    recorded.read(path, TRIALS)
  results.write_csv([{"trial": "other", "status": "done"}], path)
  with pytest.raises(ValueError, match="none of its 1 trials is one of this sweep's"):
    recorded.read(path, TRIALS)
  with pytest.raises(ValueError, match="no results file"):
    recorded.read(str(tmp_path / "missing.csv"), TRIALS)


def test_rows_of_other_trials_are_left_out_and_logged(tmp_path):
  path = str(tmp_path / "results.csv")
  results.write_csv(_rows() + [{"trial": "rnn-seed0", "status": "done"}], path)
  logs = []
  assert len(recorded.read(path, TRIALS, logs.append)) == 2
  assert logs == [f"[sweep] --resume_from {path}: 1 trial(s) not in this sweep left out: rnn-seed0"]


def test_saved_rows_load_back_and_a_finished_run_here_wins(tmp_path):
  path = str(tmp_path / "results.csv")
  results.write_csv(_rows(), path)
  workdir = str(tmp_path / "w")
  os.makedirs(workdir)
  got = recorded.read(path, TRIALS)
  recorded.save(workdir, got)
  assert recorded.load(workdir) == got
  assert recorded.load(str(tmp_path / "none")) == {}
  here = os.path.join(workdir, "lstm-learning_rate0.001-seed1")  # finished here as well
  os.makedirs(here)
  with open(os.path.join(here, "summary.json"), "w") as f:
    json.dump({"status": "done", "step": 12}, f)
  rows = recorded.collect(workdir, TRIALS, got)
  assert [(r["trial"], r["status"], r["step"]) for r in rows] == [
      ("lstm-learning_rate0.001-seed0", "done", 10), ("lstm-learning_rate0.001-seed1", "done", 12),
      ("gru-learning_rate0.001-seed0", "not run", None),
      ("gru-learning_rate0.001-seed1", "not run", None)]
