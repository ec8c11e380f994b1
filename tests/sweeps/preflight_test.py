"""The sweep pre-flight: every size of every experiment file builds each of its models, and a
cell no model can fill stops the sweep before any trial starts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from attnlab import configs
from attnlab.sweeps import preflight, spec, sweep

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZES = [(path, size) for path in sorted(
             os.path.join(ROOT, "experiments", f) for f in os.listdir(os.path.join(ROOT, "experiments"))
             if f.endswith(".py") and f != "base.py")
         for size in configs.load_module(path).SIZES]

EXPERIMENT = textwrap.dedent("""
    from attnlab import configs

    def get_config(arg=None):
      c = configs.load_config_file({base!r} + ":model=transformer,task=copy,smoke")
      c.model.target_params = 3_900
      return c

    def get_sweep(arg=None):
      fits = [{{"model.num_layers": 1, "seed": s}} for s in (0, 1)]
      return fits + [{{"model.num_layers": 3, "seed": 0}}]
""")


@pytest.mark.parametrize("path,size", SIZES,
                         ids=[f"{os.path.basename(p)[:-3]}:{s}" for p, s in SIZES])
def test_every_size_builds_each_model(path, size):
  """Each model section of the grid, on its last trial (which models: the test below)."""
  config = configs.join(path, "" if size == "full" else size)
  trials = spec.load_trials(config)
  cells = preflight.check(config, trials)  # ValueError naming the trial if one does not build
  assert cells and all(c["total"] > 0 for c in cells.values())


def test_representatives_are_the_last_trial_of_each_model_section():
  config = os.path.join(ROOT, "experiments", "mqar.py:smoke")
  reps = preflight.representatives(config, spec.load_trials(config))
  # Width is part of the model section: one representative per (model, width), seed 0 only.
  assert sorted(reps) == ["decoder-d_model16-seed0", "decoder-d_model8-seed0",
                          "lstm-d_model16-seed0", "lstm-d_model8-seed0"]
  assert reps["lstm-d_model16-seed0"].model.d_model == 16


def test_trial_config_applies_overrides_and_rejects_unknown_fields():
  config = os.path.join(ROOT, "experiments", "noise.py:smoke")
  c = preflight.trial_config(config, spec.Trial("t", {"arg.model": "lstm", "task.noise_rate": 0.5,
                                                      "seed": 3}))
  assert (c.model.name, c.task.noise_rate, c.seed) == ("lstm", 0.5, 3)
  with pytest.raises(ValueError, match="has no field 'noise_rat'"):
    preflight.trial_config(config, spec.Trial("t", {"task.noise_rat": 0.5}))


@pytest.fixture()
def unfillable(tmp_path):
  path = tmp_path / "exp.py"
  path.write_text(EXPERIMENT.format(base=os.path.join(ROOT, "experiments", "base.py")))
  return str(path), str(tmp_path / "sweep")


def test_a_cell_no_model_fills_stops_the_sweep_before_any_trial(unfillable):
  config, workdir = unfillable
  with pytest.raises(ValueError, match=r"^trial num_layers3-seed0: model.target_params=3900: "
                                       r"the closest transformer has \d+ parameters"):
    sweep.run_sweep(config, workdir)
  assert not os.path.exists(workdir)  # nothing started, not even the manifest


def test_the_cli_says_it_in_one_line(unfillable):
  config, workdir = unfillable
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "sweep.py"), "--config",
                         config, "--workdir", workdir], capture_output=True, text=True,
                        timeout=300, check=False)
  assert proc.returncode == 2, proc.stderr
  errors = [l for l in proc.stderr.splitlines() if "error:" in l]
  assert len(errors) == 1 and errors[0].startswith(
      "sweep: error: trial num_layers3-seed0: model.target_params=3900: the closest"), errors
  assert "Traceback" not in proc.stderr
