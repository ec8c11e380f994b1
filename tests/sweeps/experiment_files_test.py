"""Every experiment file: a docstring with its command, a grid, and configs the loop accepts."""

from __future__ import annotations

import glob
import os

import pytest

from attnlab import configs
from attnlab.sweeps import preflight, spec
from attnlab.train import config as config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FILES = sorted(p for p in glob.glob(os.path.join(ROOT, "experiments", "*.py"))
               if os.path.basename(p) != "base.py")


def test_all_experiments_present():
  names = {os.path.basename(p)[:-3] for p in FILES}
  assert names == {"distance", "length_generalization", "mqar", "adding", "copy", "selective_copy",
                   "noise", "cost", "moe", "mad", "state_tracking", "flip_flop", "listops",
                   "negative_eigenvalues"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: os.path.basename(p))
def test_experiment_file(path):
  module = configs.load_module(path)
  doc = module.__doc__ or ""
  assert "scripts/sweep.py --config experiments/" + os.path.basename(path) in doc
  assert "smoke" in module.SIZES
  for size in module.SIZES:
    arg = "" if size == "full" else size
    trials = spec.load_trials(f"{path}:{arg}")
    assert len({t.name for t in trials}) == len(trials)
    # The smallest cell builds too (each model's last cell: preflight_test).
    if size == "smoke":
      setup = config_lib.build(preflight.trial_config(f"{path}:{arg}", trials[0]))
      assert setup.param_counts["total"] > 0


def test_length_generalization_selects_one_cell():
  path = os.path.join(ROOT, "experiments", "length_generalization.py")
  trials = spec.load_trials(f"{path}:task=bucket_sort,model=gru")
  assert [t.name for t in trials] == ["bucket_sort-gru-seed0", "bucket_sort-gru-seed1",
                                      "bucket_sort-gru-seed2"]
  config = configs.load_module(path).get_config("task=bucket_sort,model=gru")
  assert (config.task.name, config.model.name) == ("bucket_sort", "gru")
  assert config.train_max_length == 40 and list(config.eval_lengths) == list(range(41, 501))
  with pytest.raises(ValueError, match="allowed"):
    configs.load_module(path).get_config("task=copy")


def test_length_generalization_runs_state_tracking_again_with_negative_eigenvalues():
  path = os.path.join(ROOT, "experiments", "length_generalization.py")
  names = [t.name for t in spec.load_trials(f"{path}:task=cycle_navigation,model=gated_deltanet")]
  # Seed-major: each seed's plain trial, then the same with negative eigenvalues.
  assert names == [name for s in range(3) for name in (
      f"cycle_navigation-gated_deltanet-seed{s}",
      f"cycle_navigation-gated_deltanet-allow_negative_eigenvaluesTrue-seed{s}")]
  assert len(spec.load_trials(f"{path}:task=reverse_string,model=gated_deltanet")) == 3
  trials = spec.load_trials(path)
  for model in ("slstm", "mlstm", "xlstm", "mamba2", "gated_deltanet", "deltanet"):
    assert any(t.overrides["arg.model"] == model for t in trials)


def test_state_tracking_pairs_each_trial_with_its_negative_eigenvalue_twin():
  path = os.path.join(ROOT, "experiments", "negative_eigenvalues.py")
  names = [t.name for t in spec.load_trials(f"{path}:report")]
  assert names[:2] == ["parity-deltanet-seed0",
                       "parity-deltanet-allow_negative_eigenvaluesTrue-seed0"]
  assert len(names) == 32 and sum("negative" in n for n in names) == 12
  config = preflight.trial_config(f"{path}:report", spec.load_trials(f"{path}:report")[1])
  assert (config.model.allow_negative_eigenvalues, config.model.impl) == (True, "reference")
  assert (config.train_min_length, config.train_max_length) == (1, 40)
  with pytest.raises(ValueError, match="allowed"):
    configs.load_module(path).get_config("task=copy")
