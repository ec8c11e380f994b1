"""Mamba's selective scan as one loop over time with a hand-written backward pass (the CPU kernel).

  h_t = exp(delta_t A) * h_{t-1} + (delta_t u_t) B_t,   y_t = sum_p C_t,p h_t,p   (D u is added
  by the caller)

on time-major inputs: u_TBH, delta_TBH, b_TBP, c_TBP, A as a_PH, states h_BPH. Each step works on
one [B, P, H] slab (H last: the sums over P are then adds of whole rows, and those over H run along
contiguous memory), so exp(delta A) and delta u B are never formed for more than one step: the
linear-scan form (``ssm.whole_sequence``) writes both for every step, and on CPU reading them back
cost more than the arithmetic. The forward pass of the differentiated function also saves h_t of
every step (the backward needs h_{t-1}), T slabs: the caller keeps T small (time chunks). The
backward loop runs from the last step: g_t = dL/dh_t = a_{t+1} g_{t+1} + dy_t C_t, recomputing
a_t = exp(delta_t A), and gives each input's gradient at step t from g_t, h_{t-1} and the inputs:

  d(delta_t A) = g_t h_{t-1} a_t,  dA += d(delta_t A) delta_t,  d delta_t = sum_p d(delta_t A) A
  + u_t sum_p g_t B_t,  du_t = delta_t sum_p g_t B_t,  dB_t = sum_h g_t delta_t u_t,
  dC_t = sum_h h_t dy_t,  dh0 = a_0 g_0.

A step past a sequence's end is one with delta = 0 (a = 1, b = 0): the caller zeroes delta there,
so the final state is the state at length - 1.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _per_channel(v_BH):
  return v_BH[:, None, :]  # [B, 1, H]: broadcasts over P


def _per_state(v_BP):
  return v_BP[:, :, None]  # [B, P, 1]: broadcasts over H


def _decay(a_PH, delta_BH):
  return jnp.exp(_per_channel(delta_BH) * a_PH[None])


def _forward(a_PH, u_TBH, delta_TBH, b_TBP, c_TBP, h0_BPH, save: bool):
  """(final state, y_TBH, every step's state [T, B, P, H] if ``save``, else None)."""

  def step(t, carry):
    h_BPH, y_TBH, h_TBPH = carry
    h_BPH = (_decay(a_PH, delta_TBH[t]) * h_BPH
             + _per_channel(delta_TBH[t] * u_TBH[t]) * _per_state(b_TBP[t]))
    y_TBH = y_TBH.at[t].set(jnp.sum(h_BPH * _per_state(c_TBP[t]), axis=1))
    if save:
      h_TBPH = h_TBPH.at[t].set(h_BPH)
    return h_BPH, y_TBH, h_TBPH

  h_TBPH = jnp.zeros(u_TBH.shape[:1] + h0_BPH.shape, h0_BPH.dtype) if save else None
  return jax.lax.fori_loop(0, u_TBH.shape[0], step, (h0_BPH, jnp.zeros_like(u_TBH), h_TBPH))


@jax.custom_vjp
def selective_scan(a_PH, u_TBH, delta_TBH, b_TBP, c_TBP, h0_BPH):
  """(y_TBH, final state h_BPH) of the selective recurrence from h0 (float32 throughout)."""
  h_BPH, y_TBH, _ = _forward(a_PH, u_TBH, delta_TBH, b_TBP, c_TBP, h0_BPH, save=False)
  return y_TBH, h_BPH


def _fwd(a_PH, u_TBH, delta_TBH, b_TBP, c_TBP, h0_BPH):
  h_BPH, y_TBH, h_TBPH = _forward(a_PH, u_TBH, delta_TBH, b_TBP, c_TBP, h0_BPH, save=True)
  return (y_TBH, h_BPH), (a_PH, u_TBH, delta_TBH, b_TBP, c_TBP, h0_BPH, h_TBPH)


def _bwd(res, cotangents):
  a_PH, u_TBH, delta_TBH, b_TBP, c_TBP, h0_BPH, h_TBPH = res
  dy_TBH, dh_BPH = cotangents
  steps = u_TBH.shape[0]

  def step(i, carry):
    # ``back`` = a_{t+1} g_{t+1}, the gradient reaching h_t from step t + 1.
    back_BPH, da_PH, du_TBH, ddelta_TBH, db_TBP, dc_TBP = carry
    t = steps - 1 - i
    h_prev_BPH = jnp.where(t > 0, h_TBPH[jnp.maximum(t - 1, 0)], h0_BPH)
    delta_BH, u_BH, b_BP = delta_TBH[t], u_TBH[t], b_TBP[t]
    g_BPH = back_BPH + _per_channel(dy_TBH[t]) * _per_state(c_TBP[t])
    back_BPH = g_BPH * _decay(a_PH, delta_BH)
    d_exponent_BPH = back_BPH * h_prev_BPH  # d L / d (delta_t A)
    gb_BH = jnp.sum(g_BPH * _per_state(b_BP), axis=1)
    ddelta_TBH = ddelta_TBH.at[t].set(jnp.sum(d_exponent_BPH * a_PH[None], axis=1) + gb_BH * u_BH)
    du_TBH = du_TBH.at[t].set(gb_BH * delta_BH)
    db_TBP = db_TBP.at[t].set(jnp.sum(g_BPH * _per_channel(delta_BH * u_BH), axis=2))
    dc_TBP = dc_TBP.at[t].set(jnp.sum(h_TBPH[t] * _per_channel(dy_TBH[t]), axis=2))
    da_PH = da_PH + jnp.sum(d_exponent_BPH * _per_channel(delta_BH), axis=0)
    return back_BPH, da_PH, du_TBH, ddelta_TBH, db_TBP, dc_TBP

  start = (dh_BPH, jnp.zeros_like(a_PH), jnp.zeros_like(u_TBH), jnp.zeros_like(delta_TBH),
           jnp.zeros_like(b_TBP), jnp.zeros_like(c_TBP))
  dh0_BPH, da_PH, du_TBH, ddelta_TBH, db_TBP, dc_TBP = jax.lax.fori_loop(0, steps, step, start)
  return da_PH, du_TBH, ddelta_TBH, db_TBP, dc_TBP, dh0_BPH


selective_scan.defvjp(_fwd, _bwd)
