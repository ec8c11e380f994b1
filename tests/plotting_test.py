from __future__ import annotations

import os

import numpy as np

from attnlab import plotting
from tests.analysis.attention_maps_test import assert_png


def _rows():
  rows = []
  for model in ("rnn", "transformer"):
    for d in (2, 8, 32):
      for seed in (0, 1):
        acc = 1.0 if model == "transformer" else 1.0 / d
        rows.append({"trial": f"{model}-{d}-{seed}", "status": "done", "model.name": model,
                     "task.distance": d, "seed": seed, "accuracy": acc + 0.01 * seed,
                     "accuracy@33": acc, "accuracy@65": acc / 2, "tokens_per_s": 1000.0 / d,
                     "peak_mb": 100.0 * d, "arg.length": d})
  rows.append({"trial": "bad", "status": "failed", "model.name": "rnn", "task.distance": 2,
               "seed": 2})
  return rows


def test_series_mean_and_std_over_seeds():
  series = plotting.series_over(_rows(), "task.distance", "accuracy", ["model.name"])
  xs, means, stds = series["rnn"]
  assert xs == [2, 8, 32]
  np.testing.assert_allclose(means, [0.505, 0.13, 1 / 32 + 0.005])
  np.testing.assert_allclose(stds, [0.01 / np.sqrt(2)] * 3)
  by_length = plotting.metric_vs_length(_rows(), "accuracy", ["model.name"])
  assert by_length["transformer"][0] == [33, 65]


def test_sweep_figures_are_pngs(tmp_path):
  rows = _rows()
  paths = plotting.sweep_figures(rows, ["model.name", "task.distance", "arg.length"], "accuracy",
                                 str(tmp_path), train_max_length=33)
  names = sorted(os.path.basename(p) for p in paths)
  assert names == ["accuracy_vs_distance.png", "accuracy_vs_length.png",
                   "accuracy_vs_test_length.png", "cost_vs_length.png"]
  for path in paths:
    assert_png(path)
  lag = plotting.gradient_lag([0, 1, 2, 3], [1.0, 0.5, 0.0, 0.1], str(tmp_path / "lag.png"),
                              label="rnn")
  assert_png(lag)
