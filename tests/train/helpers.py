"""Tiny configs shared by the training tests (smoke sizes, shrunk further)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from attnlab import configs
from attnlab.train import config as config_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT = os.path.join(REPO, "experiments", "base.py")


def tiny_config(model: str = "lstm", task: str = "copy", **overrides):
  """experiments/base.py:...,smoke with width 8, one eval length and dotted overrides."""
  config = configs.load_config_file(f"{DEFAULT}:model={model},task={task},smoke")
  config.model.d_model = 8
  config.eval_lengths = [config.train_min_length]
  for dotted, value in overrides.items():
    node = config
    *parents, leaf = dotted.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  if config.model.get("block") == "residual" and "model.d_ff" not in overrides:
    config.model.d_ff = 16  # the residual block's MLP (the stacked block has none)
  return config


def train_steps(config, parallelism: str, devices=None, steps: int = 3):
  """Runs ``steps`` compiled train steps outside the loop; returns (losses, host params)."""
  import jax  # pylint: disable=g-import-not-at-top
  from attnlab.models import task_model  # pylint: disable=g-import-not-at-top
  from attnlab.train import optim, parallel, state as state_lib  # pylint: disable=g-import-not-at-top
  setup = config_lib.build(config)
  tx, schedule = optim.make_optimizer(config.optimizer, config.num_steps)
  mesh = parallel.make_mesh(devices)

  def create():
    return state_lib.create(setup.model, tx, schedule, setup.task.output_kind,
                            jax.random.PRNGKey(config.seed), task_model.dummy_inputs(setup.task))

  state = parallel.init_state(create, parallelism, mesh)
  train_fn = parallel.make_train_fn(
      setup.task, parallelism=parallelism, mesh=mesh, batch_size=config.batch_size,
      data_seed=config.data_seed, seed=config.seed, accum_steps=config.optimizer.grad_accum_steps,
      buckets=setup.buckets)
  losses = []
  for _ in range(steps):
    state, metrics = train_fn(state, config.train_min_length)
    losses.append(parallel.host_scalars(metrics)["loss"])
  params = parallel.to_saveable(state, parallelism).params
  params = jax.tree_util.tree_map(lambda x: np.asarray(x.addressable_data(0)), params)
  return losses, params


_TRAIN = """
import json, sys
from attnlab.train import loop
from tests.train.helpers import tiny_config
model, task, workdir, overrides = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
summary = loop.train_and_evaluate(tiny_config(model, task, **overrides), workdir)
print(json.dumps(summary["final_eval"]))
"""


def train_on_one_device(model: str, task: str, workdir: str, **overrides) -> dict:
  """``tiny_config(model, task, **overrides)`` through ``loop.train_and_evaluate`` in a fresh
  process on one CPU device (with fewer XLA passes); returns the final evaluation.

  Not in this process: with the 4 devices tests/conftest.py forces onto 2 cores, a few hundred
  steps of the loop's sharded step can stall XLA:CPU's all-reduce rendezvous (one device thread
  never arrives, for any model), which aborts the process after 40 s.
  """
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
         "JAX_PLATFORMS": "cpu", "JAX_DISABLE_MOST_OPTIMIZATIONS": "1",
         "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))}
  done = subprocess.run([sys.executable, "-c", _TRAIN, model, task, workdir, json.dumps(overrides)],
                        env=env, cwd=REPO, capture_output=True, text=True, timeout=600,
                        check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  return json.loads(done.stdout.strip().splitlines()[-1])
