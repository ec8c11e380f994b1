"""The pure training and evaluation steps: dropout randomness is ``fold_in(rng, state.step)``, so
a run resumed at step S computes exactly what the uninterrupted run did (the batches: ``data.py``).
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from attnlab.tasks import metrics as task_metrics
from attnlab.train.state import TrainState


def task_loss(output_kind: str) -> Callable:
  """The loss of a task's outputs: ``(outputs, targets, mask) -> (loss, metrics)``."""
  return functools.partial(task_metrics.loss_and_metrics, output_kind)


def _forward(params, state: TrainState, batch, rng, deterministic: bool):
  """(the model's outputs, its mutable collections: the sown auxiliary losses)."""
  return state.apply_fn({"params": params}, batch["inputs"], batch.get("lengths"),
                        deterministic=deterministic, rngs={"dropout": rng}, mutable=["losses"])


def _objective(loss_fn, out, aux, batch):
  """(the training loss, its metrics) of the forward pass's outputs."""
  loss, metrics = loss_fn(out, batch["targets"], batch["mask"])
  # MoE load-balancing losses arrive already weighted (sown into "losses").
  aux_losses = jax.tree_util.tree_leaves(aux.get("losses", {}))
  if aux_losses:
    aux_loss = sum(jnp.sum(a).astype(jnp.float32) for a in aux_losses)
    metrics = {**metrics, "aux_loss": aux_loss}
    loss = loss + aux_loss
  return loss, metrics


def _loss(params, state: TrainState, batch, rng, deterministic: bool, loss_fn):
  out, aux = _forward(params, state, batch, rng, deterministic)
  return _objective(loss_fn, out, aux, batch)


def _micro_batches(batch, k: int):
  # Microbatch j takes rows j, j+k, ...: each device's contiguous shard feeds every microbatch.
  return jax.tree_util.tree_map(
      lambda x: x.reshape(x.shape[0] // k, k, *x.shape[1:]).swapaxes(0, 1), batch)


def _grads(state: TrainState, batch, rng, accum_steps: int, loss_fn):
  def grads_of(micro, rng):
    (_, metrics), grads = jax.value_and_grad(_loss, has_aux=True)(
        state.params, state, micro, rng, False, loss_fn)
    return grads, metrics

  if accum_steps == 1:
    return grads_of(batch, rng)

  def body(acc, xs):
    i, micro = xs
    return jax.tree_util.tree_map(jnp.add, acc, grads_of(micro, jax.random.fold_in(rng, i))), None

  micro_batches = _micro_batches(batch, accum_steps)
  zeros = jax.tree_util.tree_map(jnp.zeros_like, jax.eval_shape(
      grads_of, jax.tree_util.tree_map(lambda x: x[0], micro_batches), rng))
  (grads, metrics), _ = jax.lax.scan(body, zeros, (jnp.arange(accum_steps), micro_batches))
  return jax.tree_util.tree_map(lambda x: x / accum_steps, (grads, metrics))


def train_step(state: TrainState, batch, rng, *, loss_fn, schedule, accum_steps: int = 1,
               axis_name=None):
  """One optimizer update on ``batch`` (in ``accum_steps`` micro-batches, averaged over pmap's
  ``axis_name``). ``nonfinite_step`` (state and metrics) keeps the first step (counted after its
  update) whose loss, gradients or parameters were NaN/Inf, so the host names it when it checks."""
  rng = jax.random.fold_in(rng, state.step)
  grads, metrics = _grads(state, batch, rng, accum_steps, loss_fn)
  if axis_name is not None:
    grads, metrics = jax.lax.pmean((grads, metrics), axis_name)
  updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  grad_norm, param_norm = optax.tree.norm(grads), optax.tree.norm(params)
  finite = jnp.isfinite(metrics["loss"]) & jnp.isfinite(grad_norm) & jnp.isfinite(param_norm)
  nonfinite_step = jnp.where((state.nonfinite_step < 0) & ~finite, state.step + 1,
                             state.nonfinite_step)
  metrics = {**metrics, "grad_norm": grad_norm, "param_norm": param_norm,
             "update_norm": optax.tree.norm(updates),
             "learning_rate": jnp.asarray(schedule(state.step), jnp.float32),
             "nonfinite_step": nonfinite_step}
  return state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                       nonfinite_step=nonfinite_step), metrics


def eval_step(state: TrainState, batch, loss_fn) -> dict:
  """Metrics of the deterministic model on one batch."""
  return _loss(state.params, state, batch, jax.random.PRNGKey(0), True, loss_fn)[1]
