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
                   "noise", "cost", "moe", "state_tracking"}


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
