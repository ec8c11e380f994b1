"""Mamba's selective state space model (Gu & Dao 2023, Algorithm 2) on the block's inner width H.

  delta_t = softplus((u_t W_low) W_dt + b_dt)      [H]     low rank dt_rank
  B_t = u_t W_B,  C_t = u_t W_C                    [P]     P = d_state
  A = -exp(A_log)                                  [H, P]  S4D-real init: A_hp = -(p + 1)
  h_t = exp(delta_t A) * h_{t-1} + (delta_t u_t) B_t        [H, P] (zero-order hold for A, Euler B)
  y_t = h_t C_t + D * u_t                          [H]

Selective: delta, B and C depend on the input, so the recurrence is the linear one of
``scan/linear_scan.py`` with a = exp(delta A) and b = delta u B, one [H, P] state per sequence.

``params`` = (x_proj_HW = [W_low | W_B | W_C], dt_kernel [dt_rank, H], dt_bias_H, a_log_HP, d_H).
The functions take rank-3 inputs u, batch-major [B, T, H] or time-major [L, B, H] alike: delta is
then u's shape, B and C [..., P], the recurrence's a, b and h [..., H, P] (H, P last), all float32;
projections run in ``dtype``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from attnlab.models.scan import linear_scan, step_scan


def dt_rank(d_model: int) -> int:
  """The paper's default low rank of the step-size projection: ceil(d_model / 16)."""
  return -(-d_model // 16)


def _like(v_H, x):
  """A per-channel float32 vector shaped to broadcast against x [..., H] (same rank)."""
  return v_H.astype(jnp.float32).reshape((1,) * (x.ndim - 1) + v_H.shape)


def selective_inputs(dtype, params, u):
  """(delta [..., H], B [..., P], C [..., P]) in float32 from u [..., H]: one dot per projection."""
  x_proj_HW, dt_kernel, dt_bias_H = params[:3]
  rank, p = dt_kernel.shape[0], (x_proj_HW.shape[1] - dt_kernel.shape[0]) // 2
  dot = lambda v, w: linear_scan.matmul(v, w, dtype)  # noqa: E731
  low = dot(u, x_proj_HW[:, :rank])
  k = dot(low, dt_kernel)
  delta = jax.nn.softplus(k + _like(dt_bias_H, k))
  return delta, dot(u, x_proj_HW[:, rank:rank + p]), dot(u, x_proj_HW[:, rank + p:])


def _coefficients(params, u, delta, b):
  """(a, b) of the linear recurrence, [..., H, P]: exp(delta A) and delta u B."""
  a_HP = -jnp.exp(params[3].astype(jnp.float32))
  u = u.astype(jnp.float32)
  return (jnp.exp(delta[..., None] * a_HP[None, None]),
          (delta * u)[..., None] * b[:, :, None, :])


def _readout(params, h, c, u):
  """y = h C + D u, [..., H] in float32."""
  return (jnp.sum(h * c[:, :, None, :], axis=-1)
          + _like(params[4], u) * u.astype(jnp.float32))


def _outputs(dtype, params, u, scan_fn, h0):
  """(h, y) of the recurrence over axis 0 or 1 of u, as ``scan_fn(a, b, h0)`` runs it."""
  delta, b, c = selective_inputs(dtype, params, u)
  h = scan_fn(*_coefficients(params, u, delta, b), h0)
  return h, _readout(params, h, c, u)


def whole_sequence(dtype, segment, params, u_LBH, h0_BHP, lengths_B):
  """A whole time-major sequence: (y_LBH in ``dtype``, final state), from h0 (or None), with
  linear_scan.py's segmented parallel scan (``segment`` steps each). Holds [L, B, H, P] arrays."""
  scan_fn = lambda a, b, h0: linear_scan.linear_scan_time_major(a, b, h0, segment)  # noqa: E731
  h_LBHP, y_LBH = _outputs(dtype, params, u_LBH, scan_fn, h0_BHP)
  return (linear_scan.mask_outputs_time_major(y_LBH, lengths_B).astype(dtype),
          linear_scan.last_state_time_major(h_LBHP, h0_BHP, lengths_B))


def one_chunk(dtype, params, u_BTH, h0_BHP, lengths_B, y_saved_BTH):
  """One batch-major time chunk (the chunk function of ``scan/time_chunks.py``): (y_BTH in
  ``dtype``, final state) from h0, the chunk's steps run by ``step_scan``. Its [B, T, H, P] arrays
  are chunk-sized. ``y_saved_BTH`` is ignored: the state cannot be read back from y."""
  del y_saved_BTH
  h_BTHP, y_BTH = _outputs(dtype, params, u_BTH, step_scan.step_scan, h0_BHP)
  return (linear_scan.mask_outputs(y_BTH, lengths_B).astype(dtype),
          linear_scan.last_state(h_BTHP, h0_BHP, lengths_B))


def step(dtype, params, h_BHP, u_BH):
  """One time step of the recurrence: (h_BHP, y_BH in float32); the sequential reference's cell."""
  delta_BH, b_BP, c_BP = selective_inputs(dtype, params, u_BH)
  a_1BHP, b_1BHP = _coefficients(params, u_BH[None], delta_BH[None], b_BP[None])
  h_BHP = a_1BHP[0] * h_BHP + b_1BHP[0]
  return h_BHP, _readout(params, h_BHP[None], c_BP[None], u_BH[None])[0]
