"""The pure training and evaluation steps, and the in-step data sampling they are compiled with.

``train_step(state, batch, rng) -> (state, metrics)``: dropout randomness is
``fold_in(rng, state.step)`` and batches come from ``fold_in(data_rng, step)`` (``sample_batch``),
so a run resumed at step S computes exactly what the uninterrupted run did.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from attnlab.tasks import finite
from attnlab.tasks import metrics as task_metrics
from attnlab.train.state import TrainState


def sample_batch(task, data_rng, step, batch_size: int, length, padded_length: int | None = None,
                 train_examples: int = 0) -> dict:
  """The global batch number ``step`` (traced inside the compiled step): of ``length`` (static),
  or padded to ``padded_length`` with ``length`` traced (a scalar or per-row [B]). With
  ``train_examples`` N > 0, drawn from a fixed set of N examples instead (tasks/finite.py)."""
  if train_examples:
    return finite.sample_batch(task, data_rng, step, batch_size, train_examples, length,
                               padded_length)
  rng = jax.random.fold_in(data_rng, step)
  if padded_length is None:
    return task.sample(rng, batch_size, length)
  return task.sample_padded(rng, batch_size, length, padded_length)


def example_lengths(data_rng, step, batch_size: int, min_length: int, max_length: int):
  """int32[B]: per-example training lengths of batch ``step``, uniform on [min, max]."""
  rng = jax.random.fold_in(jax.random.fold_in(data_rng, step), 1 << 20)
  return jax.random.randint(rng, (batch_size,), min_length, max_length + 1, dtype=jnp.int32)


def _forward(params, state: TrainState, batch, rng, deterministic: bool):
  """(the model's outputs, its mutable collections: the sown auxiliary losses)."""
  return state.apply_fn({"params": params}, batch["inputs"], batch.get("lengths"),
                        deterministic=deterministic, rngs={"dropout": rng}, mutable=["losses"])


def _objective(state: TrainState, out, aux, batch):
  """(the training loss, its metrics) of the forward pass's outputs."""
  loss, metrics = task_metrics.loss_and_metrics(state.output_kind, out, batch["targets"],
                                                batch["mask"])
  # MoE load-balancing losses arrive already weighted (sown into "losses").
  aux_losses = jax.tree_util.tree_leaves(aux.get("losses", {}))
  if aux_losses:
    aux_loss = sum(jnp.sum(a).astype(jnp.float32) for a in aux_losses)
    metrics = {**metrics, "aux_loss": aux_loss}
    loss = loss + aux_loss
  return loss, metrics


def _loss(params, state: TrainState, batch, rng, deterministic: bool):
  out, aux = _forward(params, state, batch, rng, deterministic)
  return _objective(state, out, aux, batch)


def _micro_batches(batch, k: int):
  # Microbatch j takes rows j, j+k, ...: each device's contiguous shard feeds every microbatch.
  return jax.tree_util.tree_map(
      lambda x: x.reshape(x.shape[0] // k, k, *x.shape[1:]).swapaxes(0, 1), batch)


def _grads(state: TrainState, batch, rng, accum_steps: int):
  grad_fn = jax.value_and_grad(_loss, has_aux=True)
  if accum_steps == 1:
    (_, metrics), grads = grad_fn(state.params, state, batch, rng, False)
    return grads, metrics

  def body(acc, xs):
    i, micro = xs
    (_, m), g = grad_fn(state.params, state, micro, jax.random.fold_in(rng, i), False)
    return jax.tree_util.tree_map(jnp.add, acc, (g, m)), None

  zeros = jax.tree_util.tree_map(jnp.zeros_like, state.params)
  _, m0 = jax.eval_shape(lambda: _loss(state.params, state, jax.tree_util.tree_map(
      lambda x: x[0], _micro_batches(batch, accum_steps)), rng, False))
  zeros_m = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), m0)
  (grads, metrics), _ = jax.lax.scan(
      body, (zeros, zeros_m), (jnp.arange(accum_steps), _micro_batches(batch, accum_steps)))
  return jax.tree_util.tree_map(lambda x: x / accum_steps, (grads, metrics))


def train_step(state: TrainState, batch, rng, *, accum_steps: int = 1, axis_name=None):
  """One optimizer update on ``batch`` (split into ``accum_steps`` micro-batches).

  Under pmap, ``axis_name`` averages gradients and metrics over devices. Metrics include the
  learning rate, grad/param/update norms and ``nonfinite_step``: the first step (counted after
  its update, as ``state.step``) whose loss, gradients or new parameters were NaN/Inf, or -1. It
  is tracked in the state so the host can check it at log time and still name the exact step.
  """
  rng = jax.random.fold_in(rng, state.step)
  grads, metrics = _grads(state, batch, rng, accum_steps)
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
             "learning_rate": jnp.asarray(state.schedule(state.step), jnp.float32),
             "nonfinite_step": nonfinite_step}
  new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                            nonfinite_step=nonfinite_step)
  return new_state, metrics


def eval_step(state: TrainState, batch) -> dict:
  """Metrics of the deterministic model on one batch."""
  _, metrics = _loss(state.params, state, batch, jax.random.PRNGKey(0), True)
  return metrics
