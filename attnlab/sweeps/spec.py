"""Experiment files: loading them, their ``:arg`` string, their sweep grid and trial names.

An experiment file is an ml_collections config file with two functions:
``get_config(arg) -> ConfigDict`` (one training run) and ``get_sweep(arg) -> list[dict]`` (one dict
of dotted config overrides per trial, e.g. ``{"model.name": "lstm", "task.distance": 16, "seed": 0}``).

Keys ``arg.NAME`` are not config fields: they are appended to the trial's config argument
(``FILE:ARG,NAME=value``), for what a scalar override cannot change, such as the task (whose config
section has different fields per task) or a length that sets several fields and lists at once.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import types
from typing import Any, Iterable, Mapping, Sequence

from attnlab import configs

_SCALARS = (bool, int, float, str)
ARG_PREFIX = "arg."  # trial keys that extend the config argument instead of overriding a field


@dataclasses.dataclass(frozen=True)
class Trial:
  """One cell of a sweep grid: a training run with these overrides."""

  name: str  # directory name under the sweep workdir
  overrides: Mapping[str, Any]  # dotted config key -> scalar value


def grid(**axes: Sequence[Any]) -> list[dict[str, Any]]:
  """The product of the axes, in order, as override dicts. Keys use ``__`` for dots.

  ``grid(model__name=["rnn", "lstm"], seed=[0, 1])`` gives four dicts with keys ``model.name``
  and ``seed``; the last axis varies fastest.
  """
  keys = [k.replace("__", ".") for k in axes]
  for key, values in zip(keys, axes.values()):
    if isinstance(values, (str, bytes)) or not len(values):
      raise ValueError(f"grid axis {key!r} must be a non-empty list of values, got {values!r}")
  return [dict(zip(keys, combo)) for combo in itertools.product(*axes.values())]


def _short(value: Any) -> str:
  if isinstance(value, float):
    return f"{value:g}"
  return str(value)


def trial_name(overrides: Mapping[str, Any]) -> str:
  """A readable, filesystem-safe name: ``{"model.name": "lstm", "task.distance": 16, "seed": 0}``
  -> ``lstm-distance16-seed0``. ``*.name`` keys contribute their value alone."""
  parts = []
  for key, value in overrides.items():
    leaf = key.rsplit(".", 1)[-1]
    alone = leaf == "name" or (key.startswith(ARG_PREFIX) and isinstance(value, str))
    parts.append(_short(value) if alone else f"{leaf}{_short(value)}")
  name = "-".join(parts) or "trial"
  return re.sub(r"[^A-Za-z0-9._=+-]", "_", name)


def check_overrides(overrides: Any, index: int) -> dict[str, Any]:
  if not isinstance(overrides, Mapping):
    raise ValueError(f"get_sweep()[{index}] must be a dict of dotted overrides, got {overrides!r}")
  for key, value in overrides.items():
    if not isinstance(key, str) or not key or key == ARG_PREFIX:
      raise ValueError(f"get_sweep()[{index}]: override keys must be dotted strings, got {key!r}")
    if not isinstance(value, _SCALARS):
      raise ValueError(f"get_sweep()[{index}]: {key}={value!r} is not a scalar "
                       f"(allowed: {[t.__name__ for t in _SCALARS]}); put lists in get_config")
  return dict(overrides)


def make_trials(sweep: Sequence[Mapping[str, Any]]) -> list[Trial]:
  """Names each override dict; names made unique with a ``-N`` suffix where two coincide."""
  if isinstance(sweep, Mapping) or not isinstance(sweep, Sequence) or not sweep:
    raise ValueError(f"get_sweep() must return a non-empty list of dicts, got {sweep!r}")
  trials, seen = [], {}
  for i, overrides in enumerate(sweep):
    overrides = check_overrides(overrides, i)
    name = trial_name(overrides)
    if name in seen:
      seen[name] += 1
      name = f"{name}-{seen[name]}"
    else:
      seen[name] = 0
    trials.append(Trial(name, overrides))
  return trials


def load_trials(config: str) -> list[Trial]:
  """Loads ``FILE[:ARG]`` and returns its trials; ValueError if it has no grid."""
  return load_experiment(config)[1]


def load_experiment(config: str) -> tuple[types.ModuleType, list[Trial]]:
  """(module, trials) of ``FILE[:ARG]``; ValueError if it has no grid."""
  path, arg = configs.split(config)
  module = configs.load_module(path)
  get_sweep = getattr(module, "get_sweep", None)
  if get_sweep is None:
    raise ValueError(f"{path} defines no get_sweep(arg): it is a single-run config, not a sweep "
                     "(add get_sweep returning a list of override dicts)")
  return module, make_trials(get_sweep(arg))


def override_flags(overrides: Mapping[str, Any]) -> list[str]:
  """``{"a.b": 1}`` -> ``["--config.a.b=1"]`` (ml_collections parses by the field's type)."""
  return [f"--config.{k}={_short(v) if not isinstance(v, float) else repr(v)}"
          for k, v in overrides.items() if not k.startswith(ARG_PREFIX)]


def trial_config(config: str, overrides: Mapping[str, Any]) -> str:
  """``FILE[:ARG]`` extended with the trial's ``arg.*`` items."""
  extra = {k[len(ARG_PREFIX):]: _short(v) for k, v in overrides.items() if k.startswith(ARG_PREFIX)}
  if not extra:
    return config
  path, arg = configs.split(config)
  parsed = configs.parse_arg(arg)
  parsed.update(extra)
  return f"{path}:{configs.join_arg(parsed)}"


def base_config(experiment_file: str, *, model: str, task: str, smoke: bool = False):
  """``experiments/base.py:get_config("model=M,task=T[,smoke]")``, found next to
  ``experiment_file`` (pass ``__file__``): every experiment starts from the base config instead of
  copying it, with the model section of the model it trains."""
  base = os.path.join(os.path.dirname(os.path.abspath(experiment_file)), "base.py")
  arg = configs.join_arg({"model": model, "task": task, "smoke": smoke})
  return configs.load_module(base).get_config(arg)


def choose_size(parsed: Mapping[str, Any], sizes: Mapping[str, Any]) -> str:
  """The size variant named in a parsed arg (``smoke``, ``demo``...), or ``"full"``."""
  named = [k for k in sizes if k != "full" and parsed.get(k) is True]
  if len(named) > 1:
    raise ValueError(f"config arg names several sizes {named}; pick one of {sorted(sizes)}")
  return named[0] if named else "full"


def sized(arg: str | None, sizes: Mapping[str, Mapping[str, Any]],
          keys: Iterable[str] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
  """Parses an experiment's arg (size names plus ``keys``); returns (parsed, chosen size dict)."""
  parsed = configs.parse_arg(arg, allowed=(*sizes, *keys))
  return parsed, dict(sizes[choose_size(parsed, sizes)])


def set_schedule(c, *, num_steps: int, batch_size: int, learning_rate: float = 1e-3,
                 evals: int = 2) -> None:
  """Steps, batch, warmup and the log/eval/checkpoint cadence: ``evals`` validation evaluations
  per run (the points early stopping and ``converged`` read), at most four checkpoints."""
  c.num_steps, c.batch_size = int(num_steps), int(batch_size)
  c.optimizer.learning_rate = learning_rate
  c.optimizer.warmup_steps = min(100, c.num_steps // 10)
  c.log_every = max(1, min(50, c.num_steps // 10))
  c.eval_every = max(1, c.num_steps // evals)
  c.checkpoint_every = max(1, c.num_steps // min(evals, 4))


def grid_with_variants(size: Mapping[str, Any], **axes: Sequence[Any]) -> list[dict[str, Any]]:
  """``grid(**axes)`` with a size's optional variants: ``size["lrs"]``, a learning-rate sweep
  (an ``optimizer.learning_rate`` axis just before ``seed``); ``size["variants"]``, a sequence of
  ``(model, field, values)``: every trial of ``model`` again with each value of the model field
  (``("lstm", "block", ("residual",))``: the LSTM in the residual block too), the field after the
  model; ``size["negative_eigenvalues"]`` (true), every trial of a model with that field again
  with it on (``negative_eigenvalues``)."""
  axes = dict(axes)
  if size.get("lrs"):
    seed = axes.pop("seed", None)
    axes["optimizer__learning_rate"] = size["lrs"]
    if seed is not None:
      axes["seed"] = seed
  trials = grid(**axes)
  extra = [t for model, field, values in size.get("variants", ())
           for t in _again(trials, model, f"model.{field}", values)]
  return trials + extra + (negative_eigenvalues(trials) if size.get("negative_eigenvalues") else [])


def seed_major(trials: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
  """The trials ordered by seed, otherwise as given: a sweep stopped part-way (and committed as
  partial results) holds every cell at its first seeds rather than some cells at every seed."""
  return sorted((dict(t) for t in trials), key=lambda t: t.get("seed", 0))


NEGATIVE_EIGENVALUES = "model.allow_negative_eigenvalues"


def negative_eigenvalues(trials, tasks: Sequence[str] | None = None) -> list[dict[str, Any]]:
  """Every trial whose model has ``allow_negative_eigenvalues`` (deltanet, gated_deltanet,
  mamba2: transition eigenvalues in [-1, 1], Grazzi et al. 2025) once more with it on, the field
  after the model; with ``tasks``, only the trials of those tasks (``arg.task``)."""
  from attnlab.models import registry  # pylint: disable=import-outside-toplevel
  extra = []
  for trial in trials:
    model = trial.get("arg.model")
    if (model in registry.MODELS and registry.has_field(model, "allow_negative_eigenvalues")
        and (tasks is None or trial.get("arg.task") in tasks)):
      items = list(trial.items())
      at = list(trial).index("arg.model") + 1
      extra.append(dict(items[:at] + [(NEGATIVE_EIGENVALUES, True)] + items[at:]))
  return extra


def _again(trials, model: str, field: str, values) -> list[dict[str, Any]]:
  """Every trial of ``model`` once more per value of ``field`` (inserted after the model)."""
  extra = []
  for value in values:
    for trial in trials:
      if trial.get("arg.model") == model:
        items = list(trial.items())
        items.insert(1, (field, value))
        extra.append(dict(items))
  return extra
