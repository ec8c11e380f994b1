"""The general config: any registered model on any registered task.

  python scripts/train.py --config experiments/default.py:model=lstm,task=copy --workdir /tmp/copy_lstm

Append ``,smoke`` to the argument to shrink it to a few seconds on a CPU; single fields change with
``--config.FIELD=VALUE`` (``--config.parallelism=pmap``, ``--config.optimizer.learning_rate=3e-4``,
``--config.task.alphabet_size=4``). Models: attnlab.train.models.MODELS; tasks:
attnlab.tasks.registry.TASKS (the task section holds that task's config fields and defaults).
"""

from __future__ import annotations

import dataclasses

import ml_collections

from attnlab.tasks import registry

_ARG_KEYS = ("model", "task", "smoke")


def parse_arg(arg: str | None) -> dict:
  """"model=lstm,task=copy,smoke" -> {"model": "lstm", "task": "copy", "smoke": True}."""
  out = {"model": "lstm", "task": "copy", "smoke": False}
  for item in filter(None, (arg or "").split(",")):
    key, _, value = item.partition("=")
    if key not in _ARG_KEYS:
      raise ValueError(f"config argument {item!r}: unknown key {key!r}; allowed: {_ARG_KEYS}")
    out[key] = True if key == "smoke" else value
  return out


def model_config(name: str) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      name=name,
      d_model=64,  # width: hidden size (recurrent) or model dimension (attention)
      num_layers=2,
      num_heads=4,  # attention models
      num_kv_heads=0,  # 0: = num_heads
      d_ff=0,  # feed-forward size; 0: 4 * d_model (transformers and residual stacks)
      dropout_rate=0.0,
      attention_dropout_rate=0.0,
      position="sinusoidal",  # none, sinusoidal, learned, rope, alibi
      max_len=0,  # learned position table; 0: the longest train/eval length
      state_size=0,  # LRU state; 0: d_model
      moe_experts=0,  # 0: dense feed-forward
      moe_top_k=1,
      moe_capacity_factor=1.25,
      moe_aux_weight=0.01,
      attention_impl="",  # "": the backend default
      target_params=0,  # > 0: size d_model to this many parameters (within 10%)
  ))


def task_config(name: str) -> ml_collections.ConfigDict:
  config_cls, _ = registry.TASKS[name] if name in registry.TASKS else (None, None)
  fields = dataclasses.asdict(config_cls()) if config_cls else {}
  return ml_collections.ConfigDict({"name": name, **fields})


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = parse_arg(arg)
  c = ml_collections.ConfigDict()
  c.model = model_config(args["model"])
  c.task = task_config(args["task"])
  task_min = (registry.get_task(args["task"]).min_length
              if args["task"] in registry.TASKS else 1)
  length = max(8 if args["smoke"] else 32, task_min)
  c.train_min_length = length
  c.train_max_length = length
  c.eval_lengths = (length, 2 * length)  # a tuple: overridable as --config.eval_lengths=64,128
  c.batch_size = 32
  c.num_steps = 2000
  c.seed = 0  # parameter init (and dropout)
  c.data_seed = 0  # training batches and lengths
  c.eval_seed = 1234  # the fixed evaluation batches (and the seed of the tfds sets)
  # "" = evaluate on batches sampled from eval_seed; a tfds data_dir = read the fixed sets that
  # scripts/build_data.py --seed <eval_seed> built there (attnlab/train/eval_sets.py).
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
  regression = (args["task"] in registry.TASKS
                and registry.get_task(args["task"]).output_kind == "regression")
  c.best_metric = "mse" if regression else "accuracy"  # mean over eval_lengths; "" = off
  if args["smoke"]:
    c.model.d_model, c.model.num_layers, c.model.num_heads = 16, 1, 2
    c.batch_size, c.num_steps = 8, 20
    c.optimizer.learning_rate, c.optimizer.warmup_steps = 3e-3, 2
    c.log_every, c.eval_every, c.eval_batches, c.checkpoint_every = 5, 10, 1, 10
  return c
