"""Mamba-2's state space duality (Dao & Gu 2024): the SSM with one scalar decay per head,

  S_t = a_t S_{t-1} + k_t v_t^T,   o_t = S_t^T q_t          (state [K, U] per head)

with q = C_t, k = B_t (d_state K, shared by the heads: one group), v = dt_t x_t (the head's U
channels) and a_t = exp(dt_t A) in (0, 1), or 2 exp(dt_t A) - 1 in (-1, 1) with negative
eigenvalues (Grazzi et al. 2025). ``step`` is one time step and ``recurrent_form`` the step-by-step
reference; ``chunked_form`` is the SSD algorithm: inside chunks of T steps matrix products,

  O = (Q K^T * L) V + diag(d) Q S_0,   L_ts = a_{s+1} ... a_t (s <= t, else 0),  d_t = a_1 ... a_t

(Q K^T is shared by all heads; only L is per head), and the states between chunks from one
``lax.scan`` over chunks, S_next = d_T S_0 + K^T diag(L_T.) V. The products of decays are
exp(b_t - b_s) of the cumulative log |a| (every exponent <= 0: nothing overflows), times the sign
(-1)^(negatives between s and t) when decays may be negative (then the exponents are segment sums,
``_segment_sums``); log |a| is floored at LOG_FLOOR so that a decay of exactly 0 (2 exp(dt A) = 1)
stays finite (exp(LOG_FLOOR) is below float32's resolution of any product it multiplies).
Per-sequence lengths: a = 1 and v = 0 past each end (the state stops changing), outputs 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from attnlab.models import masks

LOG_FLOOR = -80.0  # the least log |a| of one step


def decay(dt_A_BLN, negative: bool):
  """a_t: exp(dt A), or 2 exp(dt A) - 1 with negative eigenvalues (float32)."""
  a = jnp.exp(dt_A_BLN.astype(jnp.float32))
  return 2.0 * a - 1.0 if negative else a


def log_decay(dt_A_BLN, negative: bool):
  """(log |a_t| floored at LOG_FLOOR, a_t < 0 or None): the chunked form's decays."""
  dt_A_BLN = dt_A_BLN.astype(jnp.float32)
  if not negative:
    return dt_A_BLN, None
  a = 2.0 * jnp.exp(dt_A_BLN) - 1.0
  return jnp.log(jnp.maximum(jnp.abs(a), jnp.exp(LOG_FLOOR))), a < 0


def _mask(lengths_B, length, x, fill):
  valid_BL = masks.valid_BL(lengths_B, length)
  if valid_BL is None:
    return x
  valid = valid_BL.reshape(valid_BL.shape + (1,) * (x.ndim - 2))
  return jnp.where(valid, x, jnp.full_like(x, fill))


def _zero_or(state_BNKU, b, n, k, u):
  return (jnp.zeros((b, n, k, u), jnp.float32) if state_BNKU is None
          else state_BNKU.astype(jnp.float32))


def _segment_sums(x_XT):
  """S_ts = x_{s+1} + ... + x_t for s < t (0 on the diagonal, unspecified above), each a sum of
  its own terms (Mamba-2's segsum) rather than the difference of two cumulative sums: a term x_r
  then receives gradient only from the sums that contain it. The difference form's rounding
  leaves ~1e-7 of every other sum in d x_r, harmless for d log a (log a = dt A) but multiplied by
  1 / a in d(dt A) when a = 2 exp(dt A) - 1 nears 0."""
  t = x_XT.shape[-1]
  strict_TS = jnp.tril(jnp.ones((t, t), bool), -1)
  terms_XTS = jnp.where(strict_TS, jnp.broadcast_to(x_XT[..., :, None], x_XT.shape + (t,)), 0.0)
  return jnp.cumsum(terms_XTS, axis=-2)


def step(s_BNKU, q_BK, k_BK, v_BNU, a_BN):
  """One step: (S_t, o_t) from S_{t-1} (float32)."""
  s_BNKU = a_BN[..., None, None] * s_BNKU + k_BK[:, None, :, None] * v_BNU[:, :, None, :]
  return s_BNKU, jnp.einsum("bk,bnku->bnu", q_BK, s_BNKU)


def recurrent_form(q_BLK, k_BLK, v_BLNU, a_BLN, *, lengths_B=None, state_BNKU=None):
  """(o_BLNU float32, final state_BNKU) one step at a time; a_BLN the decays themselves."""
  b, l, k = k_BLK.shape
  n, u = v_BLNU.shape[2:]
  a_BLN = _mask(lengths_B, l, a_BLN.astype(jnp.float32), 1.0)
  v_BLNU = _mask(lengths_B, l, v_BLNU.astype(jnp.float32), 0.0)
  time_major = lambda x: jnp.moveaxis(x.astype(jnp.float32), 1, 0)  # noqa: E731
  s_BNKU, o_LBNU = jax.lax.scan(lambda s, xs: step(s, *xs), _zero_or(state_BNKU, b, n, k, u),
                                tuple(map(time_major, (q_BLK, k_BLK, v_BLNU, a_BLN))))
  return _mask(lengths_B, l, jnp.moveaxis(o_LBNU, 0, 1), 0.0), s_BNKU


def chunked_form(q_BLK, k_BLK, v_BLNU, log_a_BLN, negative_BLN=None, *, lengths_B=None,
                 state_BNKU=None, chunk=64, dtype=jnp.float32):
  """(o_BLNU float32, final state_BNKU), ``chunk`` steps at a time. log_a_BLN = log |a_t| <= 0;
  negative_BLN: where a_t < 0 (None: nowhere). ``dtype``: the matmul operands' dtype (decays,
  states and accumulation float32). Inside, arrays are [B, N, J, T, ...] (q, k: [B, J, T, K])."""
  b, l, k = k_BLK.shape
  n, u = v_BLNU.shape[2:]
  t = max(1, min(chunk, l))
  j = -(-l // t)
  v_BLNU = _mask(lengths_B, l, v_BLNU, 0)
  log_a_BLN = _mask(lengths_B, l, log_a_BLN.astype(jnp.float32), 0.0)

  def pad(x):
    return jnp.pad(x, [(0, 0), (0, j * t - l)] + [(0, 0)] * (x.ndim - 2))

  def shared(x_BLK):  # -> [B, J, T, K]
    return pad(x_BLK).reshape(b, j, t, -1)

  def per_head(x_BLN):  # -> [B, N, J, T, ...]
    x = jnp.moveaxis(pad(x_BLN), 2, 1)
    return x.reshape((b, n, j, t) + x.shape[3:])

  dot = lambda spec, x, y: jnp.einsum(spec, x.astype(dtype), y.astype(dtype),  # noqa: E731
                                      preferred_element_type=jnp.float32)
  q_BJTK, k_BJTK, v_BNJTU = shared(q_BLK), shared(k_BLK), per_head(v_BLNU)
  log_a_BNJT = per_head(log_a_BLN)
  cum_BNJT = jnp.cumsum(log_a_BNJT, axis=-1)  # b_t
  causal_TS = jnp.tril(jnp.ones((t, t), bool)).reshape(1, 1, 1, t, t)
  if negative_BLN is None:
    sums_BNJTS = cum_BNJT[..., :, None] - cum_BNJT[..., None, :]
  else:
    sums_BNJTS = _segment_sums(log_a_BNJT)
  lower_BNJTS = jnp.exp(jnp.where(causal_TS, sums_BNJTS, -jnp.inf))
  start_BNJT = jnp.exp(cum_BNJT)  # d_t: decay from the chunk's start to t
  end_BNJT = jnp.exp(sums_BNJTS[..., -1, :])  # from s to the chunk's end
  if negative_BLN is not None:  # signs (-1)^(negatives in (s, t]) from the parities' cumsum
    negative_BLN = _mask(lengths_B, l, negative_BLN, False)
    parity_BNJT = jnp.cumsum(per_head(negative_BLN.astype(jnp.int32)), axis=-1) % 2
    sign = lambda p: 1.0 - 2.0 * p.astype(jnp.float32)  # noqa: E731
    lower_BNJTS = lower_BNJTS * sign(parity_BNJT[..., :, None] ^ parity_BNJT[..., None, :])
    start_BNJT = start_BNJT * sign(parity_BNJT)
    end_BNJT = end_BNJT * sign(parity_BNJT[..., -1:] ^ parity_BNJT)
  scores_BJTS = dot("bjtk,bjsk->bjts", q_BJTK, k_BJTK)
  o_BNJTU = dot("bnjts,bnjsu->bnjtu", scores_BJTS[:, None] * lower_BNJTS, v_BNJTU)
  # The chunks' own contributions to the state at their ends, and the chunks' decays.
  u_BNJKU = dot("bjsk,bnjsu->bnjku", k_BJTK, v_BNJTU * end_BNJT[..., None])
  a_BNJ = start_BNJT[..., -1]

  def carry(s_BNKU, xs):
    a_BN, u_BNKU = xs
    return a_BN[..., None, None] * s_BNKU + u_BNKU, s_BNKU

  final_BNKU, before_JBNKU = jax.lax.scan(
      carry, _zero_or(state_BNKU, b, n, k, u), (jnp.moveaxis(a_BNJ, 2, 0),
                                                  jnp.moveaxis(u_BNJKU, 2, 0)))
  inter_BNJTU = dot("bjtk,jbnku->bnjtu", q_BJTK, before_JBNKU)
  o_BNJTU = o_BNJTU + start_BNJT[..., None] * inter_BNJTU
  o_BLNU = jnp.moveaxis(o_BNJTU.reshape(b, n, j * t, u)[:, :, :l], 1, 2)
  return _mask(lengths_B, l, o_BLNU, 0.0), final_BNKU
