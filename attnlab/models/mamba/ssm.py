"""Mamba's selective state space model (Gu & Dao 2023, Algorithm 2) on the block's inner width H.

  delta_t = softplus((u_t W_low) W_dt + b_dt)      [H]     W_low: H -> dt_rank, W_dt: dt_rank -> H
  B_t = u_t W_B,  C_t = u_t W_C                    [P]     P = d_state
  A = -exp(A_log)                                  [H, P]  S4D-real init: A_hp = -(p + 1)
  h_t = exp(delta_t A) * h_{t-1} + (delta_t u_t) B_t        (zero-order hold for A, Euler for B)
  y_t = h_t C_t + D * u_t                          [H]

Selective: delta, B and C depend on the input, so the recurrence is the linear one of
``scan/linear_scan.py`` with a = exp(delta A) and b = delta u B, one state per sequence and
channel. The state is kept [P, H] (H last; A_log is stored [H, P] as in the reference code).

``params`` = (x_proj_HW = [W_low | W_B | W_C], dt_kernel [dt_rank, H], dt_bias_H, a_log_HP, d_H).
The functions take rank-3 inputs u, batch-major [B, T, H] or time-major [L, B, H] alike: delta is
then u's shape, B and C [..., P], the recurrence's a, b and h [..., P, H], all float32;
projections run in ``dtype``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from attnlab.models import masks
from attnlab.models.mamba import selective_scan
from attnlab.models.scan import linear_scan


def dt_rank(d_model: int) -> int:
  """The paper's default low rank of the step-size projection: ceil(d_model / 16)."""
  return -(-d_model // 16)


def _like(v_H, x):
  """A per-channel float32 vector shaped to broadcast against x [..., H] (same rank)."""
  return v_H.astype(jnp.float32).reshape((1,) * (x.ndim - 1) + v_H.shape)


def a_matrix(a_log_HP):
  """A = -exp(A_log) as [P, H] float32."""
  return -jnp.exp(a_log_HP.astype(jnp.float32)).T


def selective_inputs(dtype, params, u):
  """(delta [..., H], B [..., P], C [..., P]) in float32 from u [..., H]: one dot per projection
  (their weight gradients are then one dot each, with no concatenation)."""
  x_proj_HW, dt_kernel, dt_bias_H = params[:3]
  rank, p = dt_kernel.shape[0], (x_proj_HW.shape[1] - dt_kernel.shape[0]) // 2
  dot = lambda v, w: linear_scan.matmul(v, w, dtype)  # noqa: E731
  k = dot(dot(u, x_proj_HW[:, :rank]), dt_kernel)
  delta = jax.nn.softplus(k + _like(dt_bias_H, k))
  return delta, dot(u, x_proj_HW[:, rank:rank + p]), dot(u, x_proj_HW[:, rank + p:])


def _coefficients(params, u, delta, b):
  """(a, b) of the linear recurrence, [..., P, H]: exp(delta A) and delta u B."""
  a_PH = a_matrix(params[3])
  return (jnp.exp(delta[:, :, None, :] * a_PH[None, None]),
          (delta * u.astype(jnp.float32))[:, :, None, :] * b[..., None])


def _skip(params, y, u):
  """y + D u (float32)."""
  return y + _like(params[4], u) * u.astype(jnp.float32)


def whole_sequence(dtype, segment, params, u_LBH, h0_BPH, lengths_B):
  """A whole time-major sequence: (y_LBH in ``dtype``, final state), from h0 (or None), with
  linear_scan.py's segmented parallel scan (``segment`` steps each). Holds [L, B, P, H] arrays."""
  delta_LBH, b_LBP, c_LBP = selective_inputs(dtype, params, u_LBH)
  h_LBPH = linear_scan.linear_scan_time_major(*_coefficients(params, u_LBH, delta_LBH, b_LBP),
                                              h0_BPH, segment)
  y_LBH = _skip(params, jnp.sum(h_LBPH * c_LBP[..., None], axis=2), u_LBH)
  return (linear_scan.mask_outputs_time_major(y_LBH, lengths_B).astype(dtype),
          linear_scan.last_state_time_major(h_LBPH, h0_BPH, lengths_B))


def one_chunk(dtype, params, u_BTH, h0_BPH, lengths_B, y_saved_BTH):
  """One batch-major time chunk (the chunk function of ``scan/time_chunks.py``): (y_BTH in
  ``dtype``, final state) from h0, by the loop of ``selective_scan.py``, whose saved states are
  chunk-sized. ``y_saved_BTH`` is ignored: the state cannot be read back from y."""
  del y_saved_BTH
  u_TBH = jnp.swapaxes(u_BTH, 0, 1)
  delta_TBH, b_TBP, c_TBP = selective_inputs(dtype, params, u_TBH)
  if lengths_B is not None:
    # delta = 0 past each end: a = 1, b = 0, so the state stops at length - 1.
    valid_TB1 = masks.valid_BL(lengths_B, u_TBH.shape[0]).T[..., None]
    delta_TBH = jnp.where(valid_TB1, delta_TBH, jnp.zeros_like(delta_TBH))
  y_TBH, last_BPH = selective_scan.selective_scan(a_matrix(params[3]), u_TBH.astype(jnp.float32),
                                                  delta_TBH, b_TBP, c_TBP, h0_BPH)
  y_BTH = jnp.swapaxes(_skip(params, y_TBH, u_TBH), 0, 1)
  return linear_scan.mask_outputs(y_BTH, lengths_B).astype(dtype), last_BPH


def step(dtype, params, h_BPH, u_BH):
  """One time step of the recurrence: (h_BPH, y_BH in float32); the sequential reference's cell."""
  delta_1BH, b_1BP, c_1BP = selective_inputs(dtype, params, u_BH[None])
  a_1BPH, b_1BPH = _coefficients(params, u_BH[None], delta_1BH, b_1BP)
  h_BPH = a_1BPH[0] * h_BPH + b_1BPH[0]
  return h_BPH, _skip(params, jnp.sum(h_BPH * c_1BP[0][..., None], axis=1), u_BH)
