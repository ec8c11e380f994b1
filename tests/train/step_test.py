"""Every registered model in every block it supports (and under each initialisation scheme): one
step changes every parameter, a short run on one batch lowers the loss. The mixers themselves are
tested in tests/models.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.train import config as config_lib
from attnlab.train import optim, state as state_lib, step as step_lib
from attnlab.models import registry, task_model
from tests.train import helpers

STEPS = 25
# Every name in every block it supports under the default scheme, and in its default block under
# Flax's initialisation.
CASES = ([(name, block, "torch") for name, e in registry.MODELS.items() for block in e.blocks]
         + [(name, e.blocks[0], "flax") for name, e in registry.MODELS.items()])
# xlstm: two blocks, so that both kinds (an mLSTM block, then an sLSTM block) are trained.
OVERRIDES = {"xlstm": {"model.num_layers": 2}}


@pytest.fixture(scope="module", params=CASES, ids=["-".join(c) for c in CASES])
def run(request):
  """Trains one tiny model on one fixed batch; returns the params after 0, 1 and STEPS steps."""
  name, block, init = request.param
  config = helpers.tiny_config(name, "copy", **{
      "model.block": block, "model.init": init, "optimizer.learning_rate": 1e-2,
      "optimizer.warmup_steps": 0, "optimizer.decay": "constant", **OVERRIDES.get(name, {})})
  setup = config_lib.build(config)
  tx, schedule = optim.make_optimizer(config.optimizer, STEPS)
  state = jax.jit(lambda: state_lib.create(
      setup.model, tx, jax.random.PRNGKey(0), task_model.dummy_inputs(setup.task)))()
  batch = setup.task.sample(jax.random.PRNGKey(1), config.batch_size, config.train_min_length)
  train = jax.jit(functools.partial(step_lib.train_step, rng=jax.random.PRNGKey(2),
                                    loss_fn=step_lib.task_loss(setup.task.output_kind),
                                    schedule=schedule))
  params0 = jax.device_get(state.params)
  losses = []
  for i in range(STEPS):
    state, metrics = train(state, batch)
    losses.append(float(metrics["loss"]))
    if i == 0:
      params1 = jax.device_get(state.params)
  return "-".join(request.param), params0, params1, losses, metrics


def test_one_step_changes_every_parameter(run):
  name, params0, params1, _, _ = run
  flat0 = jax.tree_util.tree_leaves_with_path(params0)
  flat1 = jax.tree_util.tree_leaves(params1)
  unchanged = [jax.tree_util.keystr(p) for (p, a), b in zip(flat0, flat1)
               if np.array_equal(a, b)]
  assert not unchanged, f"{name}: parameters unchanged by one step: {unchanged}"


def test_short_run_lowers_the_loss(run):
  name, _, _, losses, metrics = run
  assert all(np.isfinite(losses)), (name, losses)
  assert losses[-1] < 0.8 * losses[0], (name, losses)
  assert int(metrics["nonfinite_step"]) == -1
  for key in ("grad_norm", "param_norm", "update_norm", "learning_rate"):
    assert np.isfinite(float(metrics[key])) and float(metrics[key]) > 0, (name, key)


@pytest.mark.parametrize("model", ["lstm", "transformer"])
def test_bfloat16_compute_keeps_float32_params(model):
  # Traced only (no compile): bf16 matmuls in the step, float32 parameters and loss.
  config = helpers.tiny_config(model, "copy", compute_dtype="bfloat16")
  setup = config_lib.build(config)
  tx, schedule = optim.make_optimizer(config.optimizer, config.num_steps)
  state = jax.eval_shape(lambda: state_lib.create(
      setup.model, tx, jax.random.PRNGKey(0), task_model.dummy_inputs(setup.task)))
  batch = jax.eval_shape(lambda: setup.task.sample(jax.random.PRNGKey(1), 8, 8))
  step = functools.partial(step_lib.train_step, rng=jax.random.PRNGKey(2),
                           loss_fn=step_lib.task_loss(setup.task.output_kind), schedule=schedule)
  new_state, metrics = jax.eval_shape(step, state, batch)
  dtypes = {x.dtype for x in jax.tree_util.tree_leaves(new_state.params)}
  assert dtypes == {jnp.dtype(jnp.float32)}
  assert metrics["loss"].dtype == jnp.float32
  jaxpr = str(jax.make_jaxpr(step)(state, batch))
  assert any("dot_general" in line and "bf16[" in line for line in jaxpr.splitlines())
