"""The linear recurrence h_t = a_t * h_{t-1} + b_t over time (axis 1), in parallel and sequentially.

Shapes: a broadcasts against b_BL... (a may have size 1 on any axis but time, e.g. the LRU's constant
lambda), h0 is b without its time axis. Real or complex.

Parallel forms use ``jax.lax.associative_scan`` on (a, b) pairs with the combine
(a1, b1) o (a2, b2) = (a1 a2, a2 b1 + b2): products of a shrink towards 0 but never divide, so this
is stable at any length (unlike the cumprod/cumsum form h = A (h0 + cumsum(b / A)), A = cumprod(a),
whose 1 / A overflows). The log-space form of Feng et al. (2024) runs the same combine on
(log a, log b) with logaddexp, keeping tiny positive values exact; ``parallel_scan_log`` is the
paper's own cumsum + logcumsumexp function. Both parallel forms have a hand-written backward pass,
itself one reverse linear scan (g_t = dL/dh_t + a_{t+1} g_{t+1}; dL/db_t = g_t,
dL/da_t = g_t h_{t-1}), which is faster and lighter than differentiating through the scan tree.

Per-sequence lengths: positions t >= length are padding. The state stops changing there (as if
a = 1, b = 0): the final state is h at length - 1 (h0 when length is 0), outputs there are zero.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _combine(left, right):
  a_l, b_l = left
  a_r, b_r = right
  return a_l * a_r, a_r * b_l + b_r


def _log_combine(left, right):
  la_l, lb_l = left
  la_r, lb_r = right
  return la_l + la_r, jnp.logaddexp(la_r + lb_l, lb_r)


def _sum_to_shape(x, shape):
  """Sums x over the axes where ``shape`` has size 1 (the transpose of broadcasting)."""
  axes = tuple(i for i, (n, m) in enumerate(zip(shape, x.shape)) if n == 1 and m != 1)
  return jnp.sum(x, axis=axes, keepdims=True) if axes else x


def _shift_back(x):
  """x_{t-1} along time, with zeros at t = 0."""
  return jnp.concatenate([jnp.zeros_like(x[:, :1]), x[:, :-1]], axis=1)


def _reverse_grads(a, h, g_h):
  """Cotangents of a and b given h (h0 folded in) and dL/dh: one reverse linear scan."""
  # a may keep size 1 on broadcast axes: the combine broadcasts, so it is never tiled here.
  a_next = jnp.concatenate([a[:, 1:], jnp.zeros_like(a[:, :1])], axis=1)
  _, g = jax.lax.associative_scan(_combine, (a_next, g_h), reverse=True, axis=1)
  return g, g * _shift_back(h)


@jax.custom_vjp
def _scan(a, b):
  return jax.lax.associative_scan(_combine, (a, b), axis=1)[1]


def _scan_fwd(a, b):
  h = _scan(a, b)
  return h, (a, h)


def _scan_bwd(res, g_h):
  a, h = res
  g_b, g_ah = _reverse_grads(a, h, g_h)
  return _sum_to_shape(g_ah, a.shape), g_b


_scan.defvjp(_scan_fwd, _scan_bwd)


@jax.custom_vjp
def _log_scan(log_a, log_b):
  """h (not log h) of the zero-initialised recurrence with a = exp(log_a), b = exp(log_b)."""
  return jnp.exp(jax.lax.associative_scan(_log_combine, (log_a, log_b), axis=1)[1])


def _log_scan_fwd(log_a, log_b):
  h = _log_scan(log_a, log_b)
  return h, (log_a, log_b, h)


def _log_scan_bwd(res, g_h):
  log_a, log_b, h = res
  a = jnp.exp(log_a)
  g_b, g_ah = _reverse_grads(a, h, g_h)
  # d/dlog b = b dL/db and d/dlog a = a dL/da; factors that underflow contribute nothing anyway.
  return _sum_to_shape(g_ah * a, log_a.shape), g_b * jnp.exp(log_b)


_log_scan.defvjp(_log_scan_fwd, _log_scan_bwd)


def _cumsum(x):
  # XLA:CPU lowers jnp.cumsum to a quadratic reduce-window; the scan is O(L log L) work at most.
  return jax.lax.associative_scan(jnp.add, x, axis=1)


def _valid(lengths_B, like):
  """Boolean [B, L, 1, ...] mask, True before each sequence's end."""
  b, l = like.shape[:2]
  valid_BL = jnp.arange(l)[None, :] < lengths_B[:, None]
  return valid_BL.reshape((b, l) + (1,) * (like.ndim - 2))


def _finish(h, h0, lengths_B):
  """Zeros outputs past each end and picks the final state at length - 1 (h0 if length is 0)."""
  if lengths_B is None:
    return h, h[:, -1]
  b = h.shape[0]
  idx = jnp.clip(lengths_B - 1, 0, h.shape[1] - 1).reshape((b, 1) + (1,) * (h.ndim - 2))
  last = jnp.take_along_axis(h, idx, axis=1)[:, 0]
  empty = (lengths_B == 0).reshape((b,) + (1,) * (h.ndim - 2))
  last = jnp.where(empty, jnp.zeros_like(last) if h0 is None else h0.astype(h.dtype), last)
  return jnp.where(_valid(lengths_B, h), h, jnp.zeros_like(h)), last


def linear_scan(a, b, h0=None, lengths_B=None):
  """h_t = a_t h_{t-1} + b_t for every t in parallel. Returns (h, final_state)."""
  if h0 is not None:
    # Folding h0 into the first step keeps the scan itself zero-initialised.
    b = b.at[:, 0].add(jnp.broadcast_to(a[:, 0], h0.shape) * h0)
  a = a.astype(b.dtype)
  return _finish(_scan(a, b), h0, lengths_B)


def log_linear_scan(log_a, log_b, h0=None, lengths_B=None):
  """The same recurrence with a = exp(log_a) in (0, 1], b = exp(log_b) > 0, computed in log space.

  h0 may have any sign: its contribution exp(cumsum(log a)) h0 is added outside the log-space scan.
  """
  h = _log_scan(log_a, log_b)
  if h0 is not None:
    decay = jnp.exp(_cumsum(log_a))
    h = h + decay * h0[:, None].astype(h.dtype)
  return _finish(h, h0, lengths_B)


def parallel_scan_log(log_coeffs, log_values):
  """Feng et al. (2024), Listing "parallel_scan_log": log_values[:, 0] is log h0, time axis 1.

  log_coeffs is [B, L, ...], log_values [B, L + 1, ...]; returns h_1..h_L. Exact in real arithmetic,
  but it subtracts the running sum of log a (large at long lengths) from log b and adds it back,
  so float32 loses relative precision roughly as eps * |sum log a|; kept as the paper's reference.
  """
  pad = jnp.zeros_like(log_coeffs[:, :1])
  a_star = _cumsum(jnp.concatenate([pad, log_coeffs], axis=1))
  log_h0_plus_b_star = jax.lax.associative_scan(jnp.logaddexp, log_values - a_star, axis=1)
  return jnp.exp(a_star + log_h0_plus_b_star)[:, 1:]


def sequential_scan(a, b, h0=None, lengths_B=None):
  """The reference: a plain ``lax.scan`` step by step, with a = 1, b = 0 past each end."""
  a = jnp.broadcast_to(a, b.shape).astype(b.dtype)
  if h0 is None:
    h0 = jnp.zeros(b.shape[:1] + b.shape[2:], b.dtype)
  if lengths_B is not None:
    valid = _valid(lengths_B, b)
    a = jnp.where(valid, a, jnp.ones_like(a))
    b = jnp.where(valid, b, jnp.zeros_like(b))

  def step(h, ab):
    a_t, b_t = ab
    h = a_t * h + b_t
    return h, h

  h_last, h_L = jax.lax.scan(step, h0.astype(b.dtype), (jnp.moveaxis(a, 1, 0), jnp.moveaxis(b, 1, 0)))
  h = jnp.moveaxis(h_L, 0, 1)
  if lengths_B is not None:
    h = jnp.where(valid, h, jnp.zeros_like(h))
  return h, h_last
