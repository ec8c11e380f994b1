"""Config checks and the one place a run's task and model are built from ``config``.

Everything here is plain Python on static values: a bad config raises ``ValueError`` naming the
field before anything is traced or compiled.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any, Sequence

import jax.numpy as jnp

from attnlab.models import registry as model_registry
from attnlab.models import task_model
from attnlab.tasks import base
from attnlab.tasks import lengths as lengths_lib
from attnlab.tasks import registry
from attnlab.train import data as data_lib
from attnlab.train import finite
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
  buckets: tuple | None  # the run's length buckets; None: exact lengths


def _flat_items(cfg, prefix="") -> list[tuple[str, Any]]:
  """(dotted name, value) of every field, sections included."""
  items = []
  for k, v in cfg.items():
    items.append((prefix + k, v))
    if hasattr(v, "items"):
      items += _flat_items(v, prefix + k + ".")
  return items


def check_overrides(config, dotted_names: Sequence[str]) -> None:
  """ValueError for an override naming no config field, with the closest valid names."""
  for dotted in dotted_names:
    node, parts = config, dotted.split(".")
    for i, part in enumerate(parts):
      if not hasattr(node, "items") or part not in node:
        valid = list(node.keys()) if hasattr(node, "keys") else []
        here = ".".join(parts[:i])
        close = difflib.get_close_matches(part, valid, n=3, cutoff=0.5)
        close_full = difflib.get_close_matches(dotted, [k for k, _ in _flat_items(config)], n=3,
                                               cutoff=0.6)
        hint = ", ".join(f"{here + '.' if here else ''}{c}" for c in close) or ", ".join(close_full)
        raise ValueError(
            f"--config.{dotted}: config{'.' + here if here else ''} has no field {part!r}; "
            f"closest valid names: {hint or '(none close)'}; fields here: {sorted(valid)}")
      node = node[part]


def _task(config) -> base.Task:
  """The run's task; ValueError if a train or eval length is below its minimum length."""
  fields = config.task.to_dict()  # a ConfigDict's sections are ConfigDicts
  name = fields.pop("name", None)
  if name not in registry.TASKS:
    raise ValueError(f"task.name={name!r}; allowed: {sorted(registry.TASKS)}")
  task = registry.get_task(name, **fields)
  shortest = min(int(config.train_min_length), *map(int, config.eval_lengths))
  if shortest < task.min_length:
    field = "train_min_length" if shortest == int(config.train_min_length) else "eval_lengths"
    raise ValueError(f"{field}: length {shortest} is below {task.describe_min_length()}; "
                     f"allowed: lengths >= {task.min_length}")
  return task


def validate(config, *, capture_attention: bool = False) -> model_registry.Model:
  """Every check that needs no device (names, ranges, the task's lengths): they touch no JAX
  backend, so they run before ``jax.distributed`` starts (``parallel.check_batch`` is the rest).
  Returns the typed model config at the run's dtype and longest length (before any sizing)."""
  for name, value in _flat_items(config):
    if isinstance(value, float) and not math.isfinite(value):
      raise ValueError(f"{name}={value!r}; allowed: a finite number")
  for field in _POSITIVE:
    if int(config[field]) < 1:
      raise ValueError(f"{field}={config[field]!r}; must be >= 1")
  if config.compute_dtype not in COMPUTE_DTYPES:
    raise ValueError(f"compute_dtype={config.compute_dtype!r}; allowed: {sorted(COMPUTE_DTYPES)}")
  if config.model.name == "swa" and config.model.window < 1:  # window 0 is full attention
    raise ValueError(f"model.window={config.model.window}; the sliding-window model (swa) needs "
                     "window >= 1 (full attention is model=decoder)")
  optim.validate(config.optimizer)
  if config.parallelism not in parallel.PARALLELISMS:
    raise ValueError(f"parallelism={config.parallelism!r}; allowed: {parallel.PARALLELISMS}")
  lengths_lib.check_length_range(config.train_min_length, config.train_max_length,
                                 ("train_min_length", "train_max_length"))
  finite.check(config.get("train_examples", 0), config.train_min_length, config.train_max_length)
  longest = max(int(config.train_max_length), lengths_lib.check_eval_lengths(
      config.eval_lengths)[-1])
  _task(config)
  lengths_lib.parse_buckets(config.get("length_buckets", "auto"))
  draw = config.get("train_length_draw", "batch")
  if draw not in LENGTH_DRAWS:
    raise ValueError(f"train_length_draw={draw!r}; allowed: {LENGTH_DRAWS}")
  _check_stopping(config)
  return model_registry.make_config(config.model.to_dict(), dtype=COMPUTE_DTYPES[
      config.compute_dtype], max_length=longest, capture_attention=capture_attention)


def _check_stopping(config) -> None:
  """The validation seed, the solve thresholds, patience and the convergence epsilon."""
  if int(config.val_seed) == int(config.eval_seed):
    raise ValueError(f"val_seed={config.val_seed!r} equals eval_seed: the validation batches must "
                     "differ from the test batches; allowed: any other seed")
  if not 0 < config.solve_accuracy <= 1:
    raise ValueError(f"solve_accuracy={config.solve_accuracy!r}; allowed: 0 < solve_accuracy <= 1")
  if not config.solve_mse > 0:
    raise ValueError(f"solve_mse={config.solve_mse!r}; allowed: solve_mse > 0")
  patience = config.patience
  if isinstance(patience, bool) or int(patience) != patience or patience < 0:
    raise ValueError(f"patience={patience!r}; allowed: an integer >= 0 (0: never stop early)")
  if not config.converge_epsilon >= 0:
    raise ValueError(f"converge_epsilon={config.converge_epsilon!r}; allowed: "
                     "converge_epsilon >= 0")


def build(config, capture_attention: bool = False) -> Setup:
  """Validates ``config`` and builds its task and (width-sized) model; compiles nothing."""
  model_config = validate(config, capture_attention=capture_attention)
  parallel.check_batch(config.batch_size, config.optimizer.grad_accum_steps)
  task = _task(config)
  eval_lengths = lengths_lib.check_eval_lengths(config.eval_lengths)
  if config.model.get("target_params"):
    model_config = task_model.size_to_target(model_config, task, int(config.model.target_params))
  model = task_model.from_model(model_config, task, COMPUTE_DTYPES[config.compute_dtype],
                                embed_std=float(config.model.get("embed_std", 0.0)))
  counts = task_model.param_counts(task_model.abstract_params(model, task))
  lengths = list(range(int(config.train_min_length), int(config.train_max_length) + 1))
  buckets = data_lib.buckets(config, task, lengths + list(eval_lengths))
  if config.get("train_length_draw", "batch") == "example" and buckets is None:
    raise ValueError("train_length_draw='example' pads every batch: it needs length buckets "
                     f"(length_buckets={config.get('length_buckets', 'auto')!r} gives none here)")
  return Setup(task=task, model_config=model_config, model_fields=model_config.fields(),
               model=model, param_counts=counts, eval_lengths=eval_lengths, buckets=buckets)
