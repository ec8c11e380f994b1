"""Checks shared by the families' tests beyond tests/models/mixers_test.py (which holds every
registered mixer to the contract): fast == reference from a given initial state with its
gradient, decoding in given pieces, the state size of a configuration the registry does not
build, float32 parameters and states under bf16 compute; float comparisons scaled to the
reference."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def close(got, want, tol=1e-5):
  """|got - want| <= tol * max|want| elementwise (and got finite)."""
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  assert got.shape == want.shape, (got.shape, want.shape)
  assert np.all(np.isfinite(got))
  if not got.size:
    return
  scale = max(np.abs(want).max(), 1e-30)
  np.testing.assert_allclose(got / scale, want / scale, rtol=0, atol=tol)


def tree_close(got, want, tol=1e-5):
  jax.tree_util.tree_map(lambda g, w: close(g, w, tol), got, want)


def _weights(tree):
  return jax.tree_util.tree_map(
      lambda a: jnp.cos(jnp.arange(a.size, dtype=jnp.float32)).reshape(a.shape), tree)


def outputs_and_grads(module, read_state=True):
  """jit of (params, x, lengths, state) -> ((y, final state), gradients of a loss reading every
  output, sum(y * cos(i)), and (``read_state``) the final state, with respect to the parameters,
  x and the initial state)."""

  def loss(params, x, lengths, state):
    y, last = module.apply(params, x, lengths, state)
    value = jnp.sum(y.astype(jnp.float32) * _weights(y))
    if read_state:
      value += sum(jnp.sum(jnp.sin(s) * w) for s, w in zip(
          jax.tree_util.tree_leaves(last), jax.tree_util.tree_leaves(_weights(last))))
    return value, (y, last)

  grads = jax.grad(loss, argnums=(0, 1, 3), has_aux=True)
  return jax.jit(lambda *args: grads(*args)[::-1])


def random_state(module, params, x, seed=3, scale=0.5):
  """A non-zero state of the right structure: the state after a random prefix of 5 steps."""
  prefix = scale * jax.random.normal(jax.random.PRNGKey(seed), (x.shape[0], 5, x.shape[2]))
  return jax.jit(module.apply)(params, prefix)[1]


def check_fast_equals_reference(module, params, x, lengths, state, tol=1e-5):
  """impl="fast" and impl="reference": outputs, final states and every gradient."""
  got = outputs_and_grads(module.clone(impl="fast"))(params, x, lengths, state)
  want = outputs_and_grads(module.clone(impl="reference"))(params, x, lengths, state)
  tree_close(got, want, tol)
  return got


def check_decoding(module, params, x, pieces, tol=1e-5):
  """Calls on consecutive pieces of x, each from the last call's state, equal one call on x."""
  apply = jax.jit(module.apply)
  y, final = apply(params, x)
  ys, state, start = [], None, 0
  for size in pieces:
    y_piece, state = apply(params, x[:, start:start + size], None, state)
    ys.append(y_piece)
    start += size
  assert start == x.shape[1]
  close(jnp.concatenate(ys, axis=1), y, tol)
  tree_close(state, final, tol)


def check_state_size(module, params, x):
  state = jax.eval_shape(module.apply, params, x)[1]
  floats = sum(int(np.prod(s.shape[1:])) for s in jax.tree_util.tree_leaves(state))
  assert module.state_size(x.shape[-1], x.shape[1]) == floats


def check_bf16(module, params, x, lengths, state, reference, tol=0.05):
  """bf16 compute: float32 parameters, bf16 outputs, float32 states and gradients, each within
  bf16's tolerance of ``reference`` (the float32 run's outputs_and_grads)."""
  assert {p.dtype for p in jax.tree_util.tree_leaves(params)} == {jnp.dtype(jnp.float32)}
  (y16, last16), grads16 = outputs_and_grads(module.clone(dtype=jnp.bfloat16))(
      params, x, lengths, state)
  (y32, last32), grads32 = reference
  assert y16.dtype == jnp.bfloat16
  assert {s.dtype for s in jax.tree_util.tree_leaves(last16)} == {jnp.dtype(jnp.float32)}
  close(y16.astype(jnp.float32), y32, tol)
  tree_close(last16, last32, tol)
  for g16, g32 in zip(jax.tree_util.tree_leaves(grads16[0]), jax.tree_util.tree_leaves(grads32[0])):
    assert g16.dtype == jnp.float32
    close(g16, g32, 2 * tol)
