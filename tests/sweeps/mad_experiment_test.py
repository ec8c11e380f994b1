"""experiments/mad.py: MAD's settings, the MAD score (best of the grid per setting, mean over
settings, then over tasks) by hand, and the :smoke sweep end to end (every task trains)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from attnlab import configs
from attnlab.sweeps import results

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAD = configs.load_module(os.path.join(ROOT, "experiments", "mad.py"))


def test_settings_are_mads_baselines_and_one_change_at_a_time():
  counts = {t: len(MAD.settings(t)) for t in MAD.TASKS}
  assert counts == {"in_context_recall": 11, "fuzzy_recall": 11, "noisy_recall": 14,
                    "selective_copy": 13, "compression": 11, "memorization": 6}
  s = MAD.settings("noisy_recall")
  assert s["baseline"] == dict(vocab_size=32, seq_len=128, train_examples=12_800,
                               noise_vocab_size=16, frac_noise=0.2)
  assert s["noise0.8"] == {**s["baseline"], "frac_noise": 0.8}
  full = MAD.get_config("task=memorization,setting=vocab8192,model=lstm")
  assert (full.task.vocab_size, full.train_examples, full.num_steps) == (8192, 256, 400)
  assert (full.batch_size, full.model.d_model, full.eval_batches) == (128, 128, 10)
  compression = MAD.get_config("task=compression")
  assert compression.train_min_length == 64  # seq_len 32 and its answer slots
  copy = MAD.get_config("report,task=selective_copy,setting=copy32")  # a quarter of MAD's
  assert (copy.train_min_length, copy.task.num_tokens, copy.num_steps) == (64, 8, 400)
  for task, setting in MAD.REPORT_HARDER.items():
    assert setting in MAD.settings(task)
  with pytest.raises(ValueError, match="setting='vocab7'"):
    MAD.get_config("task=compression,setting=vocab7")


def _row(model, task, setting, lr, accuracy, status="done"):
  return {"arg.model": model, "arg.task": task, "arg.setting": setting,
          "optimizer.learning_rate": lr, "status": status, "accuracy": accuracy}


def test_mad_score_is_best_of_grid_then_mean_over_settings_then_tasks():
  rows = []
  for task in MAD.TASKS:
    # Two settings; the grid's best is 0.8 and 0.4 -> task score 0.6 for "a".
    rows += [_row("a", task, "baseline", 1e-4, 0.5), _row("a", task, "baseline", 1e-3, 0.8),
             _row("a", task, "vocab32", 1e-4, 0.4), _row("a", task, "vocab32", 1e-3, 0.9,
                                                        status="nan")]
  rows += [_row("b", "compression", "baseline", 1e-3, 1.0),
           _row("b", "memorization", "baseline", 1e-3, float("nan"), status="failed")]
  scores = MAD.mad_scores(rows)
  assert scores["a"]["tasks"] == {t: pytest.approx(0.6) for t in MAD.TASKS}
  assert scores["a"]["mad"] == pytest.approx(0.6) and scores["a"]["missing"] == []
  assert scores["a"]["settings"]["compression"] == 2
  # "b" lacks four tasks and its memorization runs all failed: no MAD score.
  assert scores["b"]["tasks"] == {"compression": 1.0} and scores["b"]["mad"] is None
  assert scores["b"]["missing"] == [("memorization", "baseline")]
  table = MAD.score_table(scores)
  assert table.splitlines()[2].startswith("| a |") and "| 0.600 |" in table


@pytest.mark.slow
def test_mad_smoke_sweep_trains_every_task_and_scores(tmp_path):
  workdir = tmp_path / "mad"
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "sweep.py"),
                         f"--config={ROOT}/experiments/mad.py:smoke", f"--workdir={workdir}",
                         "--workers=2"], capture_output=True, text=True, timeout=900, env=env)
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = results.read_csv(str(workdir / "results.csv"))
  assert sorted(r["arg.task"] for r in rows) == sorted(MAD.TASKS)
  assert all(r["status"] == "done" and 0 <= r["accuracy"] <= 1 for r in rows)
  scores = MAD.mad_scores(rows)
  assert list(scores) == ["lstm"] and scores["lstm"]["mad"] is not None
  table = subprocess.run([sys.executable, os.path.join(ROOT, "experiments", "mad.py"),
                          f"--workdir={workdir}"], capture_output=True, text=True, timeout=120,
                         env=env)
  assert table.returncode == 0, table.stderr[-3000:]
  assert table.stdout.splitlines()[2].startswith("| lstm |")
