"""Checks both conv + recurrence blocks (Mamba, Hawk) share: a test module calls them with its
block. Every block maps (x_BLD, lengths_B, state) -> (y_BLD, (recurrent state, conv
state)); and the tiny recall run both models train in."""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np

from tests.train import helpers


def close(got, want, tol=1e-5):
  """|got - want| <= tol * max|want| elementwise (and got finite)."""
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  assert got.shape == want.shape
  assert np.all(np.isfinite(got))
  scale = max(np.abs(want).max(), 1e-30)
  np.testing.assert_allclose(got / scale, want / scale, rtol=0, atol=tol)


def tree_close(got, want, tol=1e-5):
  jax.tree_util.tree_map(lambda g, w: close(g, w, tol), got, want)


def outputs_and_grads(block):
  """jit of (x, state) -> ((y, final state), gradients of a loss reading every output and both
  final states with respect to the parameters, x and the initial state): one compilation."""

  def loss(params, x, lengths, state):
    y, last = block.apply(params, x, lengths, state)
    w = jnp.cos(jnp.arange(y.size, dtype=jnp.float32)).reshape(y.shape)
    value = (jnp.sum(y.astype(jnp.float32) * w) + jnp.sum(jnp.sin(last[0]))
             + jnp.sum(last[1] ** 2))
    return value, (y, last)

  grads = jax.grad(loss, argnums=(0, 1, 3), has_aux=True)
  return jax.jit(lambda *args: grads(*args)[::-1])


def causal_gradient_check(block, params, x, t):
  """d y[:, t] / d x is zero after t and not zero at t."""
  g = jax.jit(jax.grad(lambda x: jnp.sum(block.apply(params, x)[0][:, t] ** 2)))(x)
  g = np.asarray(g)
  assert np.all(g[:, t + 1:] == 0.0)
  assert np.all(np.abs(g[:, t]).sum(-1) > 0.0)


def decode_in_pieces(block, params, x, pieces, state):
  """Runs x through ``block`` as consecutive calls of the given lengths (one compilation per piece
  length), each from the state the last one returned, the first from ``state``: (y, final state)."""
  apply = jax.jit(block.apply)
  ys, start = [], 0
  for size in pieces:
    lengths = jnp.full((x.shape[0],), size, jnp.int32)
    y, state = apply(params, x[:, start:start + size], lengths, state)
    ys.append(y)
    start += size
  assert start == x.shape[1]
  return jnp.concatenate(ys, axis=1), state


def train_recall(model: str, workdir: str) -> dict:
  """A tiny associative-recall run (two pairs, four keys and four values, length 8) of ``model``
  that learns within a few seconds of CPU (400 steps of batch 32 at width 16), on one device in a
  fresh process (``helpers.train_on_one_device``); returns the final evaluation."""
  steps = 400
  return helpers.train_on_one_device(model, "associative_recall", workdir, **{
      "task.num_kv_pairs": 2, "task.num_keys": 4, "task.num_values": 4,
      "train_min_length": 8, "train_max_length": 8, "eval_lengths": [8], "batch_size": 32,
      "num_steps": steps, "eval_every": steps, "log_every": steps, "checkpoint_every": steps,
      "eval_batches": 4, "model.d_model": 16, "model.d_ff": 32,
      "optimizer.learning_rate": 1e-2, "optimizer.warmup_steps": 10})


def bf16_close_to_float32(block16, setup, reference, state_fields):
  """A block with bf16 compute against its float32 reference: bf16 outputs, float32 carried state
  (``state_fields`` of the final state) and float32 gradients, each within bf16's tolerance."""
  x, lengths, state, params = setup
  (y16, last16), grads16 = outputs_and_grads(block16)(params, x, lengths, state)
  (y32, _), grads32 = reference
  assert y16.dtype == jnp.bfloat16
  for name in state_fields:
    assert getattr(last16, name).dtype == jnp.float32, name
  close(y16.astype(jnp.float32), y32, tol=0.03)
  for g16, g32 in zip(jax.tree_util.tree_leaves(grads16[0]), jax.tree_util.tree_leaves(grads32[0])):
    assert g16.dtype == jnp.float32
    close(g16, g32, tol=0.05)
