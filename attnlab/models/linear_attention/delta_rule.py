"""The delta rule (Schlag et al. 2021; Yang et al. 2024, DeltaNet): linear attention whose state
update first removes what the state already stores under the key,

  S_t = S_{t-1} + beta_t k_t (v_t - S_{t-1}^T k_t)^T,   o_t = S_t^T q_t      (state [K, U])

with beta_t in (0, 1) and unit-norm keys, so that I - beta k k^T is a contraction.
``recurrent_form`` runs it step by step (the reference); ``chunked_form`` is Yang et al.'s chunked
form: inside a chunk of T steps with state S_0, the updates u_t = beta_t (v_t - S_{t-1}^T k_t) solve
the unit lower-triangular system

  (I + tril(diag(beta) K K^T, -1)) U = diag(beta) (V - K S_0),   i.e.  U = U~ - W S_0

with W = T K, U~ = T V, T = (I + tril(..))^-1 diag(beta) (every chunk's unit lower-triangular
matrix inverted at once by block doubling, ``unit_lower_inverse``); then O = Q S_0 + tril(Q K^T) U
and S_T = S_0 + K^T U, chunk after chunk in a ``lax.scan``.
Per-sequence lengths: beta = 0 past each end (the state stops changing), outputs there are 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from attnlab.models import masks


def unit_lower_inverse(m_XTT):
  """The inverses of unit lower-triangular matrices [..., T, T], by block doubling: from the
  inverses A^-1, D^-1 of the diagonal blocks of size s, those of size 2 s are
  [[A^-1, 0], [-D^-1 C A^-1, D^-1]], one batched matmul pair per level, log2(T) levels.

  Matmuls only: XLA:CPU's batched triangular solve, differentiated in both its operands, can hang
  (jax 0.10.2; scripts/benchmarks/long_context.py showed it).
  """
  t = m_XTT.shape[-1]
  p = 1 << (t - 1).bit_length()  # padded to a power of two with identity rows and columns
  lead = m_XTT.shape[:-2]
  m = jnp.pad(m_XTT, [(0, 0)] * len(lead) + [(0, p - t), (0, p - t)])
  pad_eye = jnp.diag((jnp.arange(p) >= t).astype(m.dtype))
  m = m + pad_eye.reshape((1,) * len(lead) + (p, p))
  inv = jnp.ones(lead + (p, 1, 1), m.dtype)  # p inverses of size 1 (the unit diagonal)
  s = 1
  while s < p:
    nb = p // (2 * s)
    m6 = m.reshape(lead + (nb, 2, s, nb, 2, s))
    c = jnp.moveaxis(jnp.diagonal(m6[..., :, 1, :, :, 0, :], axis1=-4, axis2=-2), -1, -3)
    a_inv, d_inv = inv[..., 0::2, :, :], inv[..., 1::2, :, :]  # [..., nb, s, s] each
    lower_left = -jnp.matmul(d_inv, jnp.matmul(c, a_inv, precision="highest"),
                             precision="highest")
    top = jnp.concatenate([a_inv, jnp.zeros_like(a_inv)], axis=-1)
    inv = jnp.concatenate([top, jnp.concatenate([lower_left, d_inv], axis=-1)], axis=-2)
    s *= 2
  return inv[..., 0, :t, :t]


def _masked(beta_BLN, lengths_B):
  if lengths_B is None:
    return beta_BLN
  valid_BL1 = masks.valid_BL(lengths_B, beta_BLN.shape[1])[..., None]
  return jnp.where(valid_BL1, beta_BLN, jnp.zeros_like(beta_BLN))


def _mask_outputs(o_BLNU, lengths_B):
  if lengths_B is None:
    return o_BLNU
  valid_BL11 = masks.valid_BL(lengths_B, o_BLNU.shape[1])[..., None, None]
  return jnp.where(valid_BL11, o_BLNU, 0.0)


def recurrent_form(q_BLNK, k_BLNK, v_BLNU, beta_BLN, *, lengths_B=None, state_BNKU=None):
  """(o_BLNU float32, final state_BNKU): the delta rule one step at a time (float32)."""
  b, _, n, kd = q_BLNK.shape
  s_BNKU = (jnp.zeros((b, n, kd, v_BLNU.shape[-1]), jnp.float32) if state_BNKU is None
            else state_BNKU.astype(jnp.float32))

  def step(s_BNKU, xs):
    q_BNK, k_BNK, v_BNU, beta_BN = xs
    error_BNU = v_BNU - jnp.einsum("bnk,bnku->bnu", k_BNK, s_BNKU)
    s_BNKU = s_BNKU + beta_BN[..., None, None] * k_BNK[..., :, None] * error_BNU[..., None, :]
    return s_BNKU, jnp.einsum("bnk,bnku->bnu", q_BNK, s_BNKU)

  time_major = lambda x: jnp.moveaxis(x.astype(jnp.float32), 1, 0)  # noqa: E731
  xs = tuple(map(time_major, (q_BLNK, k_BLNK, v_BLNU, _masked(beta_BLN, lengths_B))))
  s_BNKU, o_LBNU = jax.lax.scan(step, s_BNKU, xs)
  return _mask_outputs(jnp.moveaxis(o_LBNU, 0, 1), lengths_B), s_BNKU


def chunked_form(q_BLNK, k_BLNK, v_BLNU, beta_BLN, *, lengths_B=None, state_BNKU=None, chunk=64,
                 dtype=jnp.float32):
  """(o_BLNU float32, final state_BNKU) of the delta rule, ``chunk`` steps at a time.

  ``dtype``: the matmul operands' dtype; the triangular inverse, the states and accumulation are
  float32.
  """
  b, l, n, kd = q_BLNK.shape
  u = v_BLNU.shape[-1]
  t = max(1, min(chunk, l))
  j = -(-l // t)

  def chunks(x):  # [B, L, N, ...] -> [J, B, N, T, ...], zero-padded (beta 0: no update)
    x = jnp.moveaxis(x.astype(jnp.float32), 2, 1)
    x = jnp.pad(x, [(0, 0), (0, 0), (0, j * t - l)] + [(0, 0)] * (x.ndim - 3))
    return jnp.moveaxis(x.reshape((b, n, j, t) + x.shape[3:]), 2, 0)

  q_JBNTK, k_JBNTK, v_JBNTU = chunks(q_BLNK), chunks(k_BLNK), chunks(v_BLNU)
  beta_JBNT = chunks(_masked(beta_BLN, lengths_B))
  dot = lambda spec, x, y: jnp.einsum(spec, x.astype(dtype), y.astype(dtype),  # noqa: E731
                                      preferred_element_type=jnp.float32)
  strict_111TS = jnp.tril(jnp.ones((t, t), bool), -1)[None, None, None]
  kk_JBNTS = dot("jbntk,jbnsk->jbnts", k_JBNTK, k_JBNTK)
  lower_JBNTS = (jnp.eye(t)[None, None, None]
                 + jnp.where(strict_111TS, beta_JBNT[..., None] * kk_JBNTS, 0.0))
  # [W | U~] = (I + tril(diag(beta) K K^T, -1))^-1 diag(beta) [K | V], for all chunks at once.
  rhs_JBNTW = beta_JBNT[..., None] * jnp.concatenate([k_JBNTK, v_JBNTU], axis=-1)
  wu_JBNTW = jnp.matmul(unit_lower_inverse(lower_JBNTS), rhs_JBNTW, precision="highest")
  w_JBNTK, u_JBNTU = wu_JBNTW[..., :kd], wu_JBNTW[..., kd:]
  qk_JBNTS = jnp.where(jnp.tril(jnp.ones((t, t), bool))[None, None, None],
                       dot("jbntk,jbnsk->jbnts", q_JBNTK, k_JBNTK), 0.0)

  def step(s_BNKU, xs):
    q_BNTK, k_BNTK, w_BNTK, u_BNTU, qk_BNTS = xs
    u_BNTU = u_BNTU - dot("bntk,bnku->bntu", w_BNTK, s_BNKU)
    o_BNTU = dot("bntk,bnku->bntu", q_BNTK, s_BNKU) + dot("bnts,bnsu->bntu", qk_BNTS, u_BNTU)
    return s_BNKU + dot("bntk,bntu->bnku", k_BNTK, u_BNTU), o_BNTU

  s0_BNKU = (jnp.zeros((b, n, kd, u), jnp.float32) if state_BNKU is None
             else state_BNKU.astype(jnp.float32))
  final_BNKU, o_JBNTU = jax.lax.scan(step, s0_BNKU,
                                     (q_JBNTK, k_JBNTK, w_JBNTK, u_JBNTU, qk_JBNTS))
  o_BLNU = jnp.moveaxis(jnp.moveaxis(o_JBNTU, 0, 2).reshape(b, n, j * t, u)[:, :, :l], 1, 2)
  return _mask_outputs(o_BLNU, lengths_B), final_BNKU
