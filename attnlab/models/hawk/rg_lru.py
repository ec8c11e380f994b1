"""The Real-Gated Linear Recurrent Unit (De et al. 2024, "Griffin", eqs. 1-4) on width H.

  r_t = sigmoid(W_a x_t + b_a),  i_t = sigmoid(W_x x_t + b_x)         recurrence and input gates
  log a_t = -c softplus(-Lambda) r_t       (a_t = a^(c r_t), a = sigmoid(Lambda), c = 8)
  h_t = a_t * h_{t-1} + sqrt(1 - a_t^2) * (i_t * x_t)

The gates see only x, so this is the linear recurrence of ``scan/linear_scan.py`` with
b_t = sqrt(1 - a_t^2) i_t x_t; its output is h. log a_t is formed in log space (a^(c r) never
rounds to 1 before the power), and sqrt(1 - a^2) = sqrt(-expm1(2 log a)) keeps its precision for
a near 1. W_a and W_x are block-diagonal (recurrentgemma's ``BlockDiagonalLinear``): N heads of
K = H / N features, weights [N, K, K], N = 1 a dense H x H gate. Lambda is initialised so that
a^c is uniform in [a_min, a_max] = [0.9, 0.999], as the paper states (recurrentgemma draws a
itself on that ring, uniform in area). As there, the gradient of the square root is bounded
(at most MAX_SQRT_GRAD): where r_t underflows, a_t rounds to 1 and the exact one is infinite.

Unlike recurrentgemma, whose segment_pos resets the state and skips the normalisation at each
document's first token, the first step here is the equation above from h_{-1} = 0 (or a carried
state), as the paper writes it.

``params`` = (w_a_NKK, b_a_H, w_x_NKK, b_x_H, lambda_H); the functions take rank-3 inputs x,
batch-major [B, T, H] or time-major [L, B, H], and compute the recurrence in float32.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from attnlab.models.scan import linear_scan, step_scan

C = 8.0  # the paper's fixed scale of the recurrence gate's exponent
MAX_SQRT_GRAD = 1000.0  # recurrentgemma's bound on d sqrt(x) / dx


def lambda_init(a_min: float, a_max: float, c: float = C):
  """Lambda with a^c uniform in [a_min, a_max], a = sigmoid(Lambda)."""

  def init(key, shape, dtype=jnp.float32):
    log_a = jnp.log(jax.random.uniform(key, shape, jnp.float32, a_min, a_max)) / c
    return (log_a - jnp.log(-jnp.expm1(log_a))).astype(dtype)  # logit(a) = log a - log(1 - a)

  return init


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def sqrt_bounded_grad(x, max_grad: float = MAX_SQRT_GRAD):
  """sqrt(x), its derivative taken at max(x, 1 / (4 max_grad^2)) (at most max_grad)."""
  del max_grad
  return jnp.sqrt(x)


def _sqrt_fwd(x, max_grad):
  return jnp.sqrt(x), x


def _sqrt_bwd(max_grad, x, g):
  return (g * 0.5 * jax.lax.rsqrt(jnp.maximum(x, 0.25 / max_grad ** 2)),)


sqrt_bounded_grad.defvjp(_sqrt_fwd, _sqrt_bwd)


def block_diagonal(dtype, w_NKK, b_H, x):
  """x W + b over x's last axis for block-diagonal W, in ``dtype`` with a float32 result.

  One 2-D dot per block: XLA:CPU runs no batched bf16 x bf16 -> float32 dot (an einsum over the
  blocks fails at run time there).
  """
  n, k = w_NKK.shape[:2]
  y = jnp.concatenate([linear_scan.matmul(x[..., i * k:(i + 1) * k], w_NKK[i], dtype)
                       for i in range(n)], axis=-1) if n > 1 else linear_scan.matmul(
                           x, w_NKK[0], dtype)
  return y + b_H.astype(jnp.float32).reshape((1,) * (x.ndim - 1) + b_H.shape)


def coefficients(dtype, params, x, c: float = C):
  """(a, b) of the linear recurrence from the recurrence's input x (float32, x's shape)."""
  w_a_NKK, b_a_H, w_x_NKK, b_x_H, lambda_H = params
  r = jax.nn.sigmoid(block_diagonal(dtype, w_a_NKK, b_a_H, x))
  i = jax.nn.sigmoid(block_diagonal(dtype, w_x_NKK, b_x_H, x))
  # softplus(-Lambda) = -log a.
  log_a = -c * jax.nn.softplus(-lambda_H.astype(jnp.float32)).reshape(
      (1,) * (x.ndim - 1) + lambda_H.shape) * r
  multiplier = sqrt_bounded_grad(-jnp.expm1(2.0 * log_a))
  return jnp.exp(log_a), multiplier * (i * x.astype(jnp.float32))


def whole_sequence(dtype, c, segment, params, x_LBH, h0_BH, lengths_B):
  """A whole time-major sequence: (y_LBH in ``dtype``, final state), from h0 (or None), with
  linear_scan.py's segmented parallel scan (``segment`` steps each)."""
  h_LBH = linear_scan.linear_scan_time_major(*coefficients(dtype, params, x_LBH, c), h0_BH, segment)
  return (linear_scan.mask_outputs_time_major(h_LBH, lengths_B).astype(dtype),
          linear_scan.last_state_time_major(h_LBH, h0_BH, lengths_B))


def one_chunk(dtype, c, params, x_BTH, h0_BH, lengths_B, y_saved_BTH):
  """One batch-major time chunk (the chunk function of ``scan/time_chunks.py``): (y_BTH in
  ``dtype``, final state) from h0, the chunk's steps run by ``step_scan``. When the backward pass
  recomputes the chunk, its float32 y is its states h where any gradient reaches them (as in
  ``scan/gated.py``): no forward loop then."""
  a_BTH, b_BTH = coefficients(dtype, params, x_BTH, c)
  if y_saved_BTH is not None and y_saved_BTH.dtype == jnp.float32:
    h_BTH = step_scan.given_states(a_BTH, b_BTH, h0_BH, y_saved_BTH)
  else:
    h_BTH = step_scan.step_scan(a_BTH, b_BTH, h0_BH)
  y_BTH, last_BH = linear_scan.finish(h_BTH, h0_BH, lengths_B)
  return y_BTH.astype(dtype), last_BH


def step(dtype, c, params, h_BH, x_BH):
  """One time step: (h_BH, y_BH = h_BH); the sequential reference's cell."""
  a_BH, b_BH = coefficients(dtype, params, x_BH, c)
  h_BH = a_BH * h_BH + b_BH
  return h_BH, h_BH

