"""The training state: a pytree of arrays plus the static functions the step needs."""

from __future__ import annotations

from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import optax


class TrainState(flax.struct.PyTreeNode):
  """step is also the data position: batch ``step`` is sampled from fold_in(data_rng, step)."""
  step: jax.Array  # int32 scalar, updates applied so far
  params: Any  # float32 parameters
  opt_state: Any  # optax state
  nonfinite_step: jax.Array  # int32: first step whose loss/grads/params were NaN or Inf, -1 if none
  apply_fn: Callable = flax.struct.field(pytree_node=False)  # model.apply
  tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)  # the optimizer


def create(model, tx, init_rng: jax.Array, dummy_inputs) -> TrainState:
  """A fresh state; call it under jit (with out_shardings) so parameters land where they belong."""
  params = model.init(init_rng, dummy_inputs)["params"]
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                    nonfinite_step=jnp.full((), -1, jnp.int32),
                    apply_fn=model.apply, tx=tx)
