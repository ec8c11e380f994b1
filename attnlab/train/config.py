"""Config checks and the one place a run's task and model are built from ``config``.

Everything here is plain Python on static values: a bad config raises ``ValueError`` naming the
field before anything is traced or compiled.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
from typing import Any, Sequence

import jax.numpy as jnp

from attnlab.tasks import lengths as lengths_lib
from attnlab.tasks import registry
from attnlab.tasks import base
from attnlab.train import models, optim, parallel

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
_POSITIVE = ("batch_size", "num_steps", "log_every", "eval_every", "eval_batches",
             "checkpoint_every", "keep_checkpoints")


@dataclasses.dataclass(frozen=True)
class Setup:
  """What a run is made of, resolved from its config."""
  task: base.Task  # the task instance
  model_fields: dict  # resolved model fields (d_model after target sizing, max_len)
  model: models.SequenceModel  # the full model
  param_counts: dict  # {"total", "embed"/"input_proj", "backbone", "head"}
  eval_lengths: tuple  # sorted unique evaluation lengths
  dtype: Any  # compute dtype


def _flat_keys(cfg, prefix="") -> list[str]:
  keys = []
  for k, v in cfg.items():
    keys.append(prefix + k)
    if hasattr(v, "items"):
      keys += _flat_keys(v, prefix + k + ".")
  return keys


def check_overrides(config, dotted_names: Sequence[str]) -> None:
  """ValueError for an override naming no config field, with the closest valid names."""
  for dotted in dotted_names:
    node, walked = config, []
    for part in dotted.split("."):
      if not hasattr(node, "items") or part not in node:
        valid = list(node.keys()) if hasattr(node, "keys") else []
        here = ".".join(walked)
        close = difflib.get_close_matches(part, valid, n=3, cutoff=0.5)
        close_full = difflib.get_close_matches(dotted, _flat_keys(config), n=3, cutoff=0.6)
        hint = ", ".join(f"{here + '.' if here else ''}{c}" for c in close) or ", ".join(close_full)
        raise ValueError(
            f"--config.{dotted}: config{'.' + here if here else ''} has no field {part!r}; "
            f"closest valid names: {hint or '(none close)'}; fields here: {sorted(valid)}")
      node = node[part]
      walked.append(part)


def load_config_file(spec: str):
  """``path/to/file.py[:arg]`` -> its ``get_config(arg)`` (as config_flags loads it)."""
  path, _, arg = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location("_attnlab_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()


def _task_fields(config) -> dict:
  fields = dict(config.task.to_dict() if hasattr(config.task, "to_dict") else config.task)
  name = fields.pop("name", None)
  if name not in registry.TASKS:
    raise ValueError(f"task.name={name!r}; allowed: {sorted(registry.TASKS)}")
  return {"name": name, **fields}


def validate(config) -> None:
  """Checks that need no model or task instance (names, ranges, divisibility)."""
  for field in _POSITIVE:
    if int(config[field]) < 1:
      raise ValueError(f"{field}={config[field]!r}; must be >= 1")
  if config.compute_dtype not in COMPUTE_DTYPES:
    raise ValueError(f"compute_dtype={config.compute_dtype!r}; allowed: {sorted(COMPUTE_DTYPES)}")
  models.validate(models.model_fields(config.model))
  _task_fields(config)
  optim.validate(config.optimizer)
  parallel.validate(config.parallelism, config.batch_size, config.optimizer.grad_accum_steps)
  lengths_lib.check_length_range(config.train_min_length, config.train_max_length)
  lengths_lib.check_eval_lengths(config.eval_lengths)


def build(config, capture_attention: bool = False) -> Setup:
  """Validates ``config`` and builds its task and (width-sized) model; compiles nothing."""
  validate(config)
  fields = _task_fields(config)
  task = registry.get_task(fields.pop("name"), **fields)
  eval_lengths = lengths_lib.check_eval_lengths(config.eval_lengths)
  shortest = min(int(config.train_min_length), eval_lengths[0])
  if shortest < task.min_length:
    field = "train_min_length" if shortest == int(config.train_min_length) else "eval_lengths"
    raise ValueError(f"{field}: length {shortest} is below task {task.name!r}'s minimum "
                     f"length {task.min_length}")
  m = models.model_fields(config.model)
  if not m["max_len"]:
    m["max_len"] = max(int(config.train_max_length), eval_lengths[-1])
  if m["target_params"]:
    m = models.size_to_target(m, task, int(m["target_params"]))
  dtype = COMPUTE_DTYPES[config.compute_dtype]
  model = models.build(m, task, dtype, capture_attention=capture_attention)
  counts = models.param_counts(models.abstract_params(model, task))
  return Setup(task=task, model_fields=m, model=model, param_counts=counts,
               eval_lengths=eval_lengths, dtype=dtype)
