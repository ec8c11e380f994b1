"""The base config every experiment starts from; alone, it trains any registered model on any task.

  python scripts/train.py --config experiments/base.py:model=lstm,task=copy --workdir /tmp/copy_lstm

Append ``,smoke`` to the argument to shrink it to a few seconds on a CPU; single fields change with
``--config.FIELD=VALUE`` (``--config.parallelism=pmap``, ``--config.optimizer.learning_rate=3e-4``,
``--config.task.alphabet_size=4``). Models: ``attnlab.models.registry.MODELS`` (the model section
holds that model's own fields); tasks: ``attnlab.tasks.registry.TASKS`` (the task section holds that
task's config fields and defaults).
"""

from __future__ import annotations

import dataclasses

import ml_collections

from attnlab import configs
from attnlab.models import registry
from attnlab.tasks import registry as task_registry
from attnlab.train import convergence

_ARG_KEYS = ("model", "task", "smoke")


def parse_arg(arg: str | None) -> dict:
  """"model=lstm,task=copy,smoke" -> {"model": "lstm", "task": "copy", "smoke": True}."""
  return {"model": "lstm", "task": "copy", "smoke": False,
          **configs.parse_arg(arg, allowed=_ARG_KEYS)}


def model_config(name: str) -> ml_collections.ConfigDict:
  """The model section: name, target_params and that model's own fields (models.registry)."""
  return ml_collections.ConfigDict(registry.section(name)) if name in registry.MODELS else (
      ml_collections.ConfigDict({"name": name, **registry.COMMON}))


def task_config(name: str) -> ml_collections.ConfigDict:
  config_cls, _ = task_registry.TASKS[name] if name in task_registry.TASKS else (None, None)
  fields = dataclasses.asdict(config_cls()) if config_cls else {}
  return ml_collections.ConfigDict({"name": name, **fields})


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = parse_arg(arg)
  c = ml_collections.ConfigDict()
  c.model = model_config(args["model"])
  c.task = task_config(args["task"])
  task_min = (task_registry.get_task(args["task"]).min_length
              if args["task"] in task_registry.TASKS else 1)
  length = max(8 if args["smoke"] else 32, task_min)
  c.train_min_length = length
  c.train_max_length = length
  c.eval_lengths = (length, 2 * length)  # a tuple: overridable as --config.eval_lengths=64,128
  # Pad batches to length buckets (one compiled program per bucket, not per length): "auto"
  # (powers of two when a run has more than 8 distinct lengths and its task pads), "off", "pow2",
  # or increasing lengths "64,128,512" (attnlab/tasks/lengths.py).
  c.length_buckets = "auto"
  c.train_length_draw = "batch"  # "example": each example's training length drawn apart
  c.batch_size = 32
  c.train_examples = 0  # 0: a fresh batch every step; N: a fixed set of N examples, in epochs
  c.num_steps = 2000
  c.seed = 0  # parameter init (and dropout)
  c.data_seed = 0  # training batches and lengths
  c.eval_seed = 1234  # the fixed test batches (and the seed of the tfds sets)
  # Validation batches, sampled from their own seed: early stopping, convergence and the best
  # checkpoint read them; the test batches (eval_seed) are scored once, at the end.
  c.val_seed = convergence.VAL_SEED
  c.solve_accuracy = convergence.SOLVE_ACCURACY  # solved: accuracy >= this at every eval length
  c.solve_mse = convergence.SOLVE_MSE  # regression tasks: solved when MSE <= this at every length
  c.patience = convergence.PATIENCE  # stop after this many consecutive solved evaluations; 0: never
  # converged: solved, or the best validation metric of the last third beats the best before by less
  c.converge_epsilon = convergence.CONVERGE_EPSILON
  # "" = evaluate on batches sampled from eval_seed; a tfds data_dir = read the fixed sets that
  # scripts/build_data.py --seed <eval_seed> built there (attnlab/tasks/tfds_builder.py).
  c.eval_data_dir = ""
  c.optimizer = ml_collections.ConfigDict(dict(
      name="adamw", learning_rate=1e-3, warmup_steps=100, decay="cosine", weight_decay=0.01,
      clip_norm=1.0, grad_accum_steps=1, momentum=0.9))  # momentum: sgd only
  c.compute_dtype = "float32"  # or bfloat16 (parameters stay float32)
  c.parallelism = "jit"  # or pmap
  c.log_every = 50
  c.eval_every = 500
  c.eval_batches = 4
  c.checkpoint_every = 500
  c.keep_checkpoints = 3
  regression = (args["task"] in task_registry.TASKS
                and task_registry.get_task(args["task"]).output_kind == "regression")
  # The checkpoint kept as best, by this validation metric (mean over eval_lengths); "" = off.
  c.best_metric = "mse" if regression else "accuracy"
  if args["smoke"]:
    c.model.d_model = 16
    if c.model.get("num_layers"):  # a hybrid's 0 counts the mixers its layers list
      c.model.num_layers = 1
    if "num_heads" in c.model:
      c.model.num_heads = 2
    c.batch_size, c.num_steps = 8, 20
    c.optimizer.learning_rate, c.optimizer.warmup_steps = 3e-3, 2
    c.log_every, c.eval_every, c.eval_batches, c.checkpoint_every = 5, 10, 1, 10
  return c
