"""The mLSTM cell (Beck et al. 2024, xLSTM, section 2.3): a matrix memory with the covariance
update rule and exponential gating, per head,

  C_t = f_t C_{t-1} + i_t k_t v_t^T,  n_t = f_t n_{t-1} + i_t k_t     (C [K, U], n [K])
  h~_t = C_t^T q_t / max(|n_t . q_t|, 1)

with k scaled by K^-1/2, i_t = exp(i~_t) and f_t = sigmoid(f~_t) from pre-activations per head.
States are kept stabilised: C, n hold exp(-m_t) times the above, m_t = max(log f_t + m_{t-1}, i~_t)
(m = 0 in the zero state), so the lower bound 1 becomes exp(-m_t); then
h~_t = C_t^T q_t / (max(|n_t . q_t|, exp(-m_t)) + EPS), as the xlstm package's forms.
``recurrent_form`` runs this one step at a time (the reference; the package's
recurrent_step_stabilized_simple). ``chunked_form`` is the same computation over chunks of T steps
(with one chunk: the parallel form): with F_t the cumulative log f since the chunk's start and
(C_0, n_0, m_0) the state before it, step t's weights are exp(F_t + m_0 - m_t) for the carried
state and exp(F_t - F_s + i~_s - m_t) for the chunk's own steps s <= t, where
m_t = max(F_t + m_0, max_{s <= t} (F_t - F_s + i~_s)) is exactly the recurrent stabiliser (so the
two forms agree to rounding, EPS included); the states between chunks come from one ``lax.scan``.
Per-sequence lengths: past each end log f = 0 and i~ = -inf (nothing changes), outputs 0.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from attnlab.models import masks

EPS = 1e-6  # added to the denominator (the package's)


class MLSTMCellState(NamedTuple):
  c_BNKU: jax.Array  # the matrix memory (stabilised)
  n_BNK: jax.Array  # the normaliser (stabilised)
  m_BN: jax.Array  # the stabiliser


def zero_state(b, n, k, u) -> MLSTMCellState:
  return MLSTMCellState(jnp.zeros((b, n, k, u), jnp.float32), jnp.zeros((b, n, k), jnp.float32),
                        jnp.zeros((b, n), jnp.float32))


def _masked_gates(i_BLN, f_BLN, lengths_B):
  """(i~, log f) in float32, -inf and 0 past each end."""
  i_BLN, log_f_BLN = i_BLN.astype(jnp.float32), jax.nn.log_sigmoid(f_BLN.astype(jnp.float32))
  valid_BL = masks.valid_BL(lengths_B, i_BLN.shape[1])
  if valid_BL is None:
    return i_BLN, log_f_BLN
  return (jnp.where(valid_BL[..., None], i_BLN, -jnp.inf),
          jnp.where(valid_BL[..., None], log_f_BLN, 0.0))


def _mask_outputs(h_BLNU, lengths_B):
  valid_BL = masks.valid_BL(lengths_B, h_BLNU.shape[1])
  return h_BLNU if valid_BL is None else jnp.where(valid_BL[..., None, None], h_BLNU, 0.0)


def step(state, q_BNK, k_BNK, v_BNU, i_BN, log_f_BN):
  """One step: (new state, h~_BNU), float32; k already scaled."""
  c, n, m = state
  m_new = jnp.maximum(log_f_BN + m, i_BN)
  f_gate = jnp.exp(log_f_BN + m - m_new)
  i_gate = jnp.exp(i_BN - m_new)
  c = f_gate[..., None, None] * c + i_gate[..., None, None] * k_BNK[..., :, None] * v_BNU[
      ..., None, :]
  n = f_gate[..., None] * n + i_gate[..., None] * k_BNK
  numerator_BNU = jnp.einsum("bnk,bnku->bnu", q_BNK, c)
  denominator_BN = jnp.maximum(jnp.abs(jnp.sum(n * q_BNK, axis=-1)), jnp.exp(-m_new)) + EPS
  return MLSTMCellState(c, n, m_new), numerator_BNU / denominator_BN[..., None]


def recurrent_form(q_BLNK, k_BLNK, v_BLNU, i_BLN, f_BLN, *, lengths_B=None, state=None):
  """(h~_BLNU float32, final MLSTMCellState), one step at a time (float32). i, f: the gates'
  pre-activations."""
  b, _, n, kd = q_BLNK.shape
  state = zero_state(b, n, kd, v_BLNU.shape[-1]) if state is None else MLSTMCellState(
      *(s.astype(jnp.float32) for s in state))
  i_BLN, log_f_BLN = _masked_gates(i_BLN, f_BLN, lengths_B)
  time_major = lambda x: jnp.moveaxis(x.astype(jnp.float32), 1, 0)  # noqa: E731
  xs = tuple(map(time_major, (q_BLNK, k_BLNK * kd ** -0.5, v_BLNU, i_BLN, log_f_BLN)))
  state, h_LBNU = jax.lax.scan(lambda s, x: step(s, *x), state, xs)
  return _mask_outputs(jnp.moveaxis(h_LBNU, 0, 1), lengths_B), state


def chunked_form(q_BLNK, k_BLNK, v_BLNU, i_BLN, f_BLN, *, lengths_B=None, state=None, chunk=64,
                 dtype=jnp.float32):
  """(h~_BLNU float32, final MLSTMCellState) ``chunk`` steps at a time. ``dtype``: the matmul
  operands' dtype (gates, stabilisers, states and accumulation float32). Inside, arrays are
  [B, N, J, T, ...]."""
  b, l, n, kd = q_BLNK.shape
  u = v_BLNU.shape[-1]
  t = max(1, min(chunk, l))
  j = -(-l // t)
  state = zero_state(b, n, kd, u) if state is None else MLSTMCellState(
      *(s.astype(jnp.float32) for s in state))
  i_BLN, log_f_BLN = _masked_gates(i_BLN, f_BLN, lengths_B)

  def chunks(x, fill=0.0):  # [B, L, N, ...] -> [B, N, J, T, ...], padded with no-op steps
    x = jnp.moveaxis(x, 2, 1)
    x = jnp.pad(x, [(0, 0), (0, 0), (0, j * t - l)] + [(0, 0)] * (x.ndim - 3),
                constant_values=fill)
    return x.reshape((b, n, j, t) + x.shape[3:])

  dot = lambda spec, x, y: jnp.einsum(spec, x.astype(dtype), y.astype(dtype),  # noqa: E731
                                      preferred_element_type=jnp.float32)
  q, k, v = chunks(q_BLNK), chunks(k_BLNK * kd ** -0.5), chunks(v_BLNU)
  i_BNJT, cum_BNJT = chunks(i_BLN, -jnp.inf), jnp.cumsum(chunks(log_f_BLN), axis=-1)
  causal_TS = jnp.tril(jnp.ones((t, t), bool)).reshape(1, 1, 1, t, t)
  # log weight of key s for query t within the chunk: F_t - F_s + i~_s (s <= t), else -inf.
  log_w_BNJTS = jnp.where(causal_TS, cum_BNJT[..., :, None] - cum_BNJT[..., None, :]
                          + i_BNJT[..., None, :], -jnp.inf)
  # The chunks' own contributions to the state at their ends, stabilised by their own maximum.
  log_end_BNJS = log_w_BNJTS[..., -1, :]
  own_max_BNJ = jnp.max(log_end_BNJS, axis=-1)
  safe_BNJ = jnp.where(jnp.isfinite(own_max_BNJ), own_max_BNJ, 0.0)  # all -inf: no contribution
  w_end_BNJS = jnp.exp(log_end_BNJS - safe_BNJ[..., None])
  c_own_BNJKU = dot("bnjsk,bnjsu->bnjku", k * w_end_BNJS[..., None], v)
  n_own_BNJK = jnp.einsum("bnjsk,bnjs->bnjk", k.astype(jnp.float32), w_end_BNJS)

  def carry(s, xs):
    f_BN, max_BN, safe_BN, c_own, n_own = xs
    c, nn_, m = s
    m_new = jnp.maximum(f_BN + m, max_BN)
    old, new = jnp.exp(f_BN + m - m_new), jnp.exp(safe_BN - m_new)
    return MLSTMCellState(old[..., None, None] * c + new[..., None, None] * c_own,
                          old[..., None] * nn_ + new[..., None] * n_own, m_new), s

  xs = (cum_BNJT[..., -1], own_max_BNJ, safe_BNJ, c_own_BNJKU, n_own_BNJK)
  final, before = jax.lax.scan(carry, state, tuple(jnp.moveaxis(x, 2, 0) for x in xs))
  c0_JBNKU, n0_JBNK, m0_JBN = before
  log_carried_BNJT = cum_BNJT + jnp.moveaxis(m0_JBN, 0, 2)[..., None]  # F_t + m_0
  m_BNJT = jnp.maximum(log_carried_BNJT, jnp.max(log_w_BNJTS, axis=-1))
  w_BNJTS = jnp.exp(log_w_BNJTS - m_BNJT[..., None])
  carried_BNJT = jnp.exp(log_carried_BNJT - m_BNJT)
  scores_BNJTS = dot("bnjtk,bnjsk->bnjts", q, k) * w_BNJTS
  # (Batch axes leading in both operands: XLA:CPU fails some bf16 dots with them elsewhere.)
  numerator = dot("bnjts,bnjsu->bnjtu", scores_BNJTS, v) + carried_BNJT[..., None] * dot(
      "bnjtk,bnjku->bnjtu", q, jnp.moveaxis(c0_JBNKU, 0, 2))
  qn_BNJT = jnp.sum(scores_BNJTS, axis=-1) + carried_BNJT * jnp.einsum(
      "bnjtk,bnjk->bnjt", q.astype(jnp.float32), jnp.moveaxis(n0_JBNK, 0, 2))
  h_BNJTU = numerator / (jnp.maximum(jnp.abs(qn_BNJT), jnp.exp(-m_BNJT)) + EPS)[..., None]
  h_BLNU = jnp.moveaxis(h_BNJTU.reshape(b, n, j * t, u)[:, :, :l], 1, 2)
  return _mask_outputs(h_BLNU, lengths_B), final
