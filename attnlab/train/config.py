"""Config checks and the one place a run's task and model are built from ``config``.

Everything here is plain Python on static values: a bad config raises ``ValueError`` naming the
field before anything is traced or compiled.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Sequence

import jax.numpy as jnp

from attnlab.models import registry as model_registry
from attnlab.models import task_model
from attnlab.tasks import base
from attnlab.tasks import lengths as lengths_lib
from attnlab.tasks import registry
from attnlab.train import optim, parallel

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
LENGTH_DRAWS = ("batch", "example")  # train_length_draw: one length per batch, or per example
_POSITIVE = ("batch_size", "num_steps", "log_every", "eval_every", "eval_batches",
             "checkpoint_every", "keep_checkpoints")


@dataclasses.dataclass(frozen=True)
class Setup:
  """What a run is made of, resolved from its config."""
  task: base.Task  # the task instance
  model_config: model_registry.Model  # the typed model config, placeholders resolved
  model_fields: dict  # the model's fields, placeholders resolved (d_model after sizing, max_len)
  model: task_model.SequenceModel  # the full model
  param_counts: dict  # {"total", "embed"/"input_proj", "backbone", "head"}
  eval_lengths: tuple  # sorted unique evaluation lengths
  dtype: Any  # compute dtype
  buckets: tuple | None  # the run's length buckets; None: exact lengths


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
  model_registry.make_config(_model_fields(config), max_length=1)  # names and sizes
  _task_fields(config)
  optim.validate(config.optimizer)
  parallel.validate(config.parallelism, config.batch_size, config.optimizer.grad_accum_steps)
  lengths_lib.check_length_range(config.train_min_length, config.train_max_length)
  lengths_lib.check_eval_lengths(config.eval_lengths)
  lengths_lib.parse_buckets(config.get("length_buckets", "auto"))
  draw = config.get("train_length_draw", "batch")
  if draw not in LENGTH_DRAWS:
    raise ValueError(f"train_length_draw={draw!r}; allowed: {LENGTH_DRAWS}")


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
  m = _model_fields(config)
  longest = max(int(config.train_max_length), eval_lengths[-1])
  if m.get("target_params"):
    m = task_model.size_to_target(m, task, int(m["target_params"]), max_length=longest)
  dtype = COMPUTE_DTYPES[config.compute_dtype]
  model_config = model_registry.make_config(m, dtype=dtype, max_length=longest,
                                            capture_attention=capture_attention)
  model = task_model.from_model(model_config, task, dtype)
  counts = task_model.param_counts(task_model.abstract_params(model, task))
  lengths = list(range(int(config.train_min_length), int(config.train_max_length) + 1))
  buckets = lengths_lib.resolve_buckets(config.get("length_buckets", "auto"),
                                        lengths + list(eval_lengths), task.pads)
  if config.get("train_length_draw", "batch") == "example" and buckets is None:
    raise ValueError("train_length_draw='example' pads every batch: it needs length buckets "
                     f"(length_buckets={config.get('length_buckets', 'auto')!r} gives none here)")
  return Setup(task=task, model_config=model_config, model_fields=model_config.fields(),
               model=model, param_counts=counts, eval_lengths=eval_lengths, dtype=dtype,
               buckets=buckets)


def _model_fields(config) -> dict:
  """The model section as a plain dict."""
  return dict(config.model.to_dict() if hasattr(config.model, "to_dict") else config.model)
