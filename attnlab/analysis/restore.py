"""A trained run restored from its workdir alone (``config.json`` + ``checkpoints/``), and its
evaluation at any lengths through the same compiled evaluation the training loop uses."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Sequence

import jax
import ml_collections
import numpy as np

from attnlab.tasks import registry
from attnlab.train import config as config_lib
from attnlab.train import data as data_lib
from attnlab.train import evaluate as evaluate_lib
from attnlab.train import loop, parallel, workdir_config


@dataclasses.dataclass(frozen=True)
class Run:
  """A restored run: its config, its built task and model, and the state at ``step``."""
  workdir: str  # the training workdir
  config: ml_collections.ConfigDict  # as saved in config.json
  setup: config_lib.Setup  # task, model, resolved model fields
  state: Any  # attnlab.train.state.TrainState (single copy, replicated over the mesh)
  step: int  # the restored step
  mesh: Any  # the device mesh the state lives on


def parse_checkpoint(text: str | int) -> str | int:
  """``"best"``, ``"latest"`` or a non-negative step number."""
  if isinstance(text, int) or str(text).strip().isdigit():
    return int(text)
  if text in ("best", "latest"):
    return text
  raise ValueError(f"--checkpoint={text!r}; allowed: 'best', 'latest' or a step number")


def parse_lengths(items: Sequence[str | int]) -> tuple[int, ...]:
  """Positive integer lengths, sorted and unique; ValueError naming the first bad one."""
  out = set()
  for item in items:
    text = str(item).strip()
    if not text.isdigit() or int(text) < 1:
      raise ValueError(f"--lengths: {item!r} is not a positive integer")
    out.add(int(text))
  if not out:
    raise ValueError("--lengths: no lengths given")
  return tuple(sorted(out))


def load_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise ValueError(f"{workdir} holds no config.json: not a training workdir")
  with open(path) as f:
    return ml_collections.ConfigDict(workdir_config.with_legacy_fields(json.load(f)))


def load_run(workdir: str, checkpoint: str | int = "latest", *,
             capture_attention: bool = False, task_config: dict | None = None) -> Run:
  """Restores ``checkpoint`` ("latest", "best" or a step) of the run in ``workdir``.

  ``task_config``: task fields (strings, as on a command line) that replace the run's, to evaluate
  it on another config of its task (flip-flop's sparse strings, more noise...).
  Raises ValueError for a workdir without config or checkpoints, a step it does not hold, or a
  field its task does not have.
  """
  checkpoint = parse_checkpoint(checkpoint)
  config = load_config(workdir)
  if task_config:
    config.task.update(registry.parse_fields(config.task.name, task_config))
  directory = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(directory) or not any(n.isdigit() for n in os.listdir(directory)):
    raise ValueError(f"{workdir} holds no checkpoint (nothing under {directory})")
  setup = config_lib.build(config, capture_attention=capture_attention)
  mesh = parallel.make_mesh()
  create = loop.create_fn(config, setup)
  ckpt = loop.checkpointer(config, workdir)
  try:
    steps = ckpt.steps()
    if checkpoint == "best":
      step = ckpt.best_step()
      if step is None:
        raise ValueError(f"no checkpoint in {directory} is ranked by a best_metric (best_metric="
                         f"{config.get('best_metric') or None!r}); use --checkpoint latest or a "
                         f"step of {steps}")
    elif checkpoint == "latest":
      step = None
    else:
      step = checkpoint
      if step not in steps:
        raise ValueError(f"--checkpoint={step}: no such step in {directory}; saved steps: {steps}")
    abstract = parallel.abstract_state(create, mesh)  # one copy, replicated over the mesh
    if step is None:
      found = ckpt.restore_latest(abstract)
      if found is None:
        raise ValueError(f"no restorable checkpoint in {directory}")
      state, step = found
    else:
      state = ckpt.restore(step, abstract)
  finally:
    ckpt.close()
  return Run(workdir=workdir, config=config, setup=setup, state=state, step=int(step), mesh=mesh)


def check_lengths(run: Run, lengths: Sequence[int]) -> tuple[int, ...]:
  lengths = parse_lengths(lengths)
  task = run.setup.task
  if lengths[0] < task.min_length:
    raise ValueError(f"--lengths: {lengths[0]} is below {task.describe_min_length()}")
  max_len = run.setup.model_fields.get("max_len")
  if run.setup.model_fields.get("position") == "learned" and lengths[-1] > max_len:
    raise ValueError(f"--lengths: {lengths[-1]} exceeds the learned position table "
                     f"(model.max_len={max_len}) of this run")
  return lengths


def evaluate_lengths(run: Run, lengths: Sequence[int], *, split: str = "test") -> dict:
  """``{"step", "lengths": {"64": {metric: value}}, "mean": {metric: mean over lengths}}``.

  Uses the training run's evaluation data of ``split`` ("test": the tfds sets under
  ``eval_data_dir``, or batches sampled from ``eval_seed``; "val": batches sampled from
  ``val_seed``; the run's ``batch_size`` and ``eval_batches``), so at a trained length it
  reproduces the run's final test evaluation, or with "val" its logged validation curve.
  """
  lengths = check_lengths(run, lengths)
  config, task = run.config, run.setup.task
  # The evaluation the loop builds, over the lengths asked for (a saved run may be asked new ones).
  evaluation = evaluate_lib.from_config(
      config, task, parallel.make(config.parallelism, run.mesh).eval_mesh, lengths,
      data_lib.buckets(config, task, lengths), split=split)
  record = evaluate_lib.evaluate(evaluation, run.state, lengths, run.step)
  record["mean"] = evaluate_lib.mean_over_lengths(record)
  return record


def eval_batch(run: Run, batch_size: int, length: int, seed: int | None = None) -> dict:
  """A batch of the run's task (first evaluation batch's key unless ``seed`` is given)."""
  check_lengths(run, [length])
  key = jax.random.PRNGKey(run.config.eval_seed if seed is None else seed)
  batch = data_lib.eval_batch(run.setup.task, key, batch_size, 0, None, length)
  return jax.tree_util.tree_map(np.asarray, batch)
