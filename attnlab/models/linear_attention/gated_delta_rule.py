"""The gated delta rule (Yang et al. 2025, Gated DeltaNet): the delta rule whose state also decays,

  S_t = a_t (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T,   o_t = S_t^T q_t   (state [K, U])

with a_t = exp(log_a_t) in (0, 1] one number per head and step, and beta_t in (0, 1), or (0, 2)
for transition eigenvalues in (-1, 1) (Grazzi et al. 2025). ``recurrent_form`` runs it step by
step (the reference); ``chunked_form`` is the chunked form of delta_rule.py with the decays
folded in: with b_t the cumulative log decay since the chunk's start and S_0 the state before the
chunk, the updates u_t = beta_t (v_t - a_t S_{t-1}^T k_t) solve the unit lower-triangular system

  (I + tril(diag(beta) (K K^T * G), -1)) U = diag(beta) (V - diag(exp(b)) K S_0),
  G_ts = exp(b_t - b_s),

i.e. U = U~ - W S_0 with W = T diag(exp(b)) K, U~ = T V, T = (I + tril(..))^-1 diag(beta); then
O = diag(exp(b)) Q S_0 + tril(Q K^T * G) U and S_T = exp(b_T) S_0 + (K * exp(b_T - b))^T U. Every
exponent is <= 0 (masked before exp), so nothing overflows however strong the decay.
Per-sequence lengths: beta = 0 and decay 1 past each end (the state stops changing), outputs 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from attnlab.models import masks
from attnlab.models.linear_attention.delta_rule import unit_lower_inverse


def _masked(x_BLN, lengths_B, fill):
  valid_BL = masks.valid_BL(lengths_B, x_BLN.shape[1])
  if valid_BL is None:
    return x_BLN
  return jnp.where(valid_BL[..., None], x_BLN, jnp.full_like(x_BLN, fill))


def _mask_outputs(o_BLNU, lengths_B):
  valid_BL = masks.valid_BL(lengths_B, o_BLNU.shape[1])
  return o_BLNU if valid_BL is None else jnp.where(valid_BL[..., None, None], o_BLNU, 0.0)


def _zero_or(state_BNKU, b, n, kd, u):
  return (jnp.zeros((b, n, kd, u), jnp.float32) if state_BNKU is None
          else state_BNKU.astype(jnp.float32))


def recurrent_form(q_BLNK, k_BLNK, v_BLNU, beta_BLN, log_a_BLN, *, lengths_B=None,
                   state_BNKU=None):
  """(o_BLNU float32, final state_BNKU): the gated delta rule one step at a time (float32)."""
  b, _, n, kd = q_BLNK.shape
  s_BNKU = _zero_or(state_BNKU, b, n, kd, v_BLNU.shape[-1])

  def step(s_BNKU, xs):
    q_BNK, k_BNK, v_BNU, beta_BN, log_a_BN = xs
    s_BNKU = jnp.exp(log_a_BN)[..., None, None] * s_BNKU
    error_BNU = v_BNU - jnp.einsum("bnk,bnku->bnu", k_BNK, s_BNKU)
    s_BNKU = s_BNKU + beta_BN[..., None, None] * k_BNK[..., :, None] * error_BNU[..., None, :]
    return s_BNKU, jnp.einsum("bnk,bnku->bnu", q_BNK, s_BNKU)

  time_major = lambda x: jnp.moveaxis(x.astype(jnp.float32), 1, 0)  # noqa: E731
  xs = tuple(map(time_major, (q_BLNK, k_BLNK, v_BLNU, _masked(beta_BLN, lengths_B, 0.0),
                              _masked(log_a_BLN, lengths_B, 0.0))))
  s_BNKU, o_LBNU = jax.lax.scan(step, s_BNKU, xs)
  return _mask_outputs(jnp.moveaxis(o_LBNU, 0, 1), lengths_B), s_BNKU


def chunked_form(q_BLNK, k_BLNK, v_BLNU, beta_BLN, log_a_BLN, *, lengths_B=None,
                 state_BNKU=None, chunk=64, dtype=jnp.float32):
  """(o_BLNU float32, final state_BNKU) of the gated delta rule, ``chunk`` steps at a time.

  ``dtype``: the matmul operands' dtype; the decays, the triangular inverse, the states and
  accumulation are float32.
  """
  b, l, n, kd = q_BLNK.shape
  u = v_BLNU.shape[-1]
  t = max(1, min(chunk, l))
  j = -(-l // t)

  def chunks(x):  # [B, L, N, ...] -> [J, B, N, T, ...], zero-padded (beta 0, decay 1: no change)
    x = jnp.moveaxis(x.astype(jnp.float32), 2, 1)
    x = jnp.pad(x, [(0, 0), (0, 0), (0, j * t - l)] + [(0, 0)] * (x.ndim - 3))
    return jnp.moveaxis(x.reshape((b, n, j, t) + x.shape[3:]), 2, 0)

  q_JBNTK, k_JBNTK, v_JBNTU = chunks(q_BLNK), chunks(k_BLNK), chunks(v_BLNU)
  beta_JBNT = chunks(_masked(beta_BLN, lengths_B, 0.0))
  cum_JBNT = jnp.cumsum(chunks(_masked(log_a_BLN, lengths_B, 0.0)), axis=-1)  # b_t
  dot = lambda spec, x, y: jnp.einsum(spec, x.astype(dtype), y.astype(dtype),  # noqa: E731
                                      preferred_element_type=jnp.float32)
  causal_111TS = jnp.tril(jnp.ones((1, 1, 1, t, t), bool))
  strict_111TS = jnp.tril(jnp.ones((1, 1, 1, t, t), bool), -1)
  exponent_JBNTS = cum_JBNT[..., :, None] - cum_JBNT[..., None, :]
  decay_JBNTS = jnp.exp(jnp.where(causal_111TS, exponent_JBNTS, -jnp.inf))  # G, 0 above
  kk_JBNTS = dot("jbntk,jbnsk->jbnts", k_JBNTK, k_JBNTK)
  lower_JBNTS = jnp.eye(t)[None, None, None] + jnp.where(
      strict_111TS, beta_JBNT[..., None] * kk_JBNTS * decay_JBNTS, 0.0)
  # [W | U~] = (I + tril(..))^-1 diag(beta) [K exp(b) | V], for all chunks at once.
  rhs_JBNTW = beta_JBNT[..., None] * jnp.concatenate(
      [k_JBNTK * jnp.exp(cum_JBNT)[..., None], v_JBNTU], axis=-1)
  wu_JBNTW = jnp.matmul(unit_lower_inverse(lower_JBNTS), rhs_JBNTW, precision="highest")
  w_JBNTK, u_JBNTU = wu_JBNTW[..., :kd], wu_JBNTW[..., kd:]
  qk_JBNTS = dot("jbntk,jbnsk->jbnts", q_JBNTK, k_JBNTK) * decay_JBNTS
  q_in_JBNTK = q_JBNTK * jnp.exp(cum_JBNT)[..., None]
  k_out_JBNTK = k_JBNTK * jnp.exp(cum_JBNT[..., -1:] - cum_JBNT)[..., None]
  chunk_decay_JBN = jnp.exp(cum_JBNT[..., -1])

  def step(s_BNKU, xs):
    q_BNTK, k_BNTK, w_BNTK, u_BNTU, qk_BNTS, a_BN = xs
    u_BNTU = u_BNTU - dot("bntk,bnku->bntu", w_BNTK, s_BNKU)
    o_BNTU = dot("bntk,bnku->bntu", q_BNTK, s_BNKU) + dot("bnts,bnsu->bntu", qk_BNTS, u_BNTU)
    s_BNKU = a_BN[..., None, None] * s_BNKU + dot("bntk,bntu->bnku", k_BNTK, u_BNTU)
    return s_BNKU, o_BNTU

  final_BNKU, o_JBNTU = jax.lax.scan(
      step, _zero_or(state_BNKU, b, n, kd, u),
      (q_in_JBNTK, k_out_JBNTK, w_JBNTK, u_JBNTU, qk_JBNTS, chunk_decay_JBN))
  o_BLNU = jnp.moveaxis(jnp.moveaxis(o_JBNTU, 0, 2).reshape(b, n, j * t, u)[:, :, :l], 1, 2)
  return _mask_outputs(o_BLNU, lengths_B), final_BNKU
