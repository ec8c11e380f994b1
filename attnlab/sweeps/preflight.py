"""Before a sweep starts: each distinct model and task of its grid builds (field names, ranges,
parameter matching), so that a cell no model can fill fails the sweep in seconds, not after the
hours spent on the cells before it. Nothing is compiled; one build per distinct model section and
task, on the last trial that has them (the grids end on their largest cells)."""

from __future__ import annotations

import json
from typing import Mapping, Sequence

from attnlab import configs
from attnlab.sweeps import spec


def trial_config(config: str, trial: spec.Trial):
  """The ConfigDict that ``scripts/train.py`` runs for ``trial`` of sweep ``FILE[:ARG]``."""
  from attnlab.train import config as config_lib  # pylint: disable=import-outside-toplevel
  loaded = configs.load_config_file(spec.trial_config(config, trial.overrides))
  flat = {k: v for k, v in trial.overrides.items() if not k.startswith(spec.ARG_PREFIX)}
  config_lib.check_overrides(loaded, list(flat))
  loaded.update_from_flattened_dict(flat)
  return loaded


def _key(config) -> str:
  return json.dumps([config.model.to_dict(), config.task.name], sort_keys=True, default=str)


def _group(trial: spec.Trial) -> tuple:
  """What can change a trial's model section or task: its ``arg.*``, ``model.*`` and ``task.*``
  overrides (the others, seeds and optimizer fields, cannot)."""
  return tuple(sorted((k, repr(v)) for k, v in trial.overrides.items()
                      if k.startswith((spec.ARG_PREFIX, "model.", "task."))))


def representatives(config: str, trials: Sequence[spec.Trial]) -> dict[str, object]:
  """Trial name -> its config, for the last trial of each distinct model section and task.

  Only the last trial of each group of trials with the same ``_group`` is loaded: a grid of
  thousands of trials over seeds and optimizer settings loads one config per model and task.
  """
  last_of_group = {_group(t): i for i, t in enumerate(trials)}
  last: dict[str, tuple[str, object]] = {}
  for i in sorted(last_of_group.values()):
    c = trial_config(config, trials[i])
    last[_key(c)] = (trials[i].name, c)
  return dict(last.values())


def check(config: str, trials: Sequence[spec.Trial]) -> Mapping[str, dict]:
  """ValueError ``trial NAME: ...`` for the first representative trial that does not build;
  otherwise each representative's parameter counts."""
  from attnlab.train import config as config_lib  # pylint: disable=import-outside-toplevel
  counts = {}
  for name, c in representatives(config, trials).items():
    try:
      counts[name] = config_lib.build(c).param_counts
    except ValueError as e:
      raise ValueError(f"trial {name}: {e}") from None
  return counts
