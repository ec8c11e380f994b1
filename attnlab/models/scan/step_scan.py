"""The linear recurrence h_t = a_t h_{t-1} + b_t, step by step along axis 1 of batch-major arrays.

``step_scan(a_BT, b_BT, h0_B)`` is the scan inside each time chunk of the scan layers on CPU
(``time_chunks``): a chunk's arrays are small enough to stay in cache, so a plain loop over its
steps, each a few multiply-adds on one [B, ...] slab, beats any parallel form, and working
batch-major means the chunk's output is written into the layer's [B, L, ...] output, and its
cotangent read from it, without a transpose. ``a`` may broadcast (size 1 on any axis but time:
the LRU's lambda).

Hand-written backward: the reverse loop g_t = dL/dh_t + a_{t+1} g_{t+1} (written over dL/dh in
place), then dL/db_t = g_t, dL/da_t = g_t h_{t-1}, dL/dh0 = a_0 g_0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from attnlab.models.scan import linear_scan


def _at(x, t):
  """x[:, t] of a [B, T, ...] array, or x[:, 0] where time broadcasts."""
  return jax.lax.dynamic_index_in_dim(x, t if x.shape[1] > 1 else 0, axis=1, keepdims=False)


def _put(x, v, t):
  return jax.lax.dynamic_update_index_in_dim(x, v, t, axis=1)


def _forward(a, b, h0):
  """h (over b's buffer) from h0."""

  def step(t, carry):
    h, h_BT = carry
    h = _at(a, t) * h + _at(h_BT, t)
    return h, _put(h_BT, h, t)

  return jax.lax.fori_loop(0, b.shape[1], step, (h0, b))[1]


@jax.custom_vjp
def step_scan(a, b, h0):
  """h_t = a_t h_{t-1} + b_t for t = 0..T-1 along axis 1, h_{-1} = h0: returns h (like b)."""
  return _forward(a.astype(b.dtype), b, h0.astype(b.dtype))


def _fwd(a, b, h0):
  h = step_scan(a, b, h0)
  return h, (a, h, h0)


def _bwd(res, g_h):
  a, h, h0 = res
  a = a.astype(h.dtype)
  steps = h.shape[1]

  def step(i, carry):
    # ``back`` = a_{t+1} g_{t+1}, the gradient reaching h_t from step t + 1. The product reads g_t
    # back from the buffer: computed apart, it made a second reader of the buffer being updated,
    # and XLA copied the whole buffer every step.
    back, g_BT = carry
    t = steps - 1 - i
    g_BT = _put(g_BT, _at(g_BT, t) + back, t)
    return _at(a, t) * _at(g_BT, t), g_BT

  back, g = jax.lax.fori_loop(0, steps, step, (jnp.zeros_like(h0, h.dtype), g_h))
  h_prev = jnp.concatenate([h0[:, None].astype(h.dtype), h[:, :-1]], axis=1)
  return linear_scan.sum_to_shape(g * h_prev, a.shape), g, back.astype(h0.dtype)


step_scan.defvjp(_fwd, _bwd)


@jax.custom_vjp
def given_states(a, b, h0, h):
  """``h``, the states step_scan(a, b, h0) would return, already known (a chunk's recomputation in
  the backward pass reads them from the layer's output): no forward loop, the same gradients with
  respect to a, b and h0 (none flows to h, a value, not a function of them here)."""
  del a, b, h0
  return h


def _given_fwd(a, b, h0, h):
  return h, (a, h, h0)


def _given_bwd(res, g_h):
  return _bwd(res, g_h) + (None,)


given_states.defvjp(_given_fwd, _given_bwd)
