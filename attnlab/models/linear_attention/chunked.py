"""The chunked form of recurrent.py's recurrence: time and memory linear in the length.

The sequence is cut into chunks of T steps. With b_t the cumulative log decay since the chunk's
start (b_t = log a_1 + .. + log a_t, in float32) and S_0 the state before the chunk, step t of it is

  o_t = (q_t * exp(b_t))^T S_0                               (inter-chunk: the carried state)
      + sum_{s <= t} (q_t * exp(b_t - b_s)) . k_s  v_s       (intra-chunk: a masked T x T product)
  S_T = diag(exp(b_T)) S_0 + sum_s (k_s * exp(b_T - b_s)) v_s^T

Every exponent is <= 0, so nothing overflows however strong the decay or long the sequence (the
tempting exp(b_t) * exp(-b_s) form, or 1 / cumprod(a) over the whole sequence, overflows). The
states S_0 of all chunks come from one ``lax.scan`` over chunks of the per-chunk sums [K, U]
(never a [L, K, U] array of per-step states); the rest are batched einsums over all chunks.

The intra-chunk decays exp(b_t - b_s) depend on the key feature for a per-feature decay (GLA), so
they cannot be folded into one T x T matrix. There each chunk is split into sub-blocks of
SUB_CHUNK steps: keys of earlier sub-blocks enter through the factorisation
exp(b_t - b_s) = exp(b_t - r) exp(r - b_s), r the cumulative decay at the end of the sub-block
before t's (both factors <= 1: still no overflow), and keys of t's own sub-block through the
elementwise exp(b_t - b_s) masked to s <= t before exp ([sub, sub, K] per sub-block).

Same arguments, state convention and results as ``recurrent.recurrent_form`` (the test reference).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from attnlab.models import masks
from attnlab.models.linear_attention.recurrent import EPS

SUB_CHUNK = 16  # steps per sub-block of the per-feature decay's intra-chunk term (gcd with T)


def _dot(spec, x, y, dtype):
  """einsum with operands in the compute dtype and a float32 result. Every product here has its
  batch axes leading (XLA:CPU fails on some bf16 x bf16 -> f32 dots with batch axes elsewhere)."""
  return jnp.einsum(spec, x.astype(dtype), y.astype(dtype), preferred_element_type=jnp.float32)


def _masked_exp(mask, exponent):
  """exp(exponent) where mask, else 0; masked before exp (the unused exponents may be > 0)."""
  return jnp.exp(jnp.where(mask, exponent, -jnp.inf))


def _causal(t):
  return jnp.tril(jnp.ones((t, t), bool))


def _intra_plain(q_BNJTK, k_BNJSK, v_BNJSU, dtype):
  """sum_{s <= t} (q_t . k_s) v_s within each chunk."""
  a_BNJTS = jnp.where(_causal(q_BNJTK.shape[3]),
                      _dot("bnjtk,bnjsk->bnjts", q_BNJTK, k_BNJSK, dtype), 0.0)
  return _dot("bnjts,bnjsu->bnjtu", a_BNJTS, v_BNJSU, dtype)


def _intra_per_head(q_BNJTK, k_BNJSK, v_BNJSU, b_BNJT, dtype):
  """sum_{s <= t} exp(b_t - b_s) (q_t . k_s) v_s: one decay per head, a T x T matrix per chunk."""
  decay_BNJTS = _masked_exp(_causal(b_BNJT.shape[3]), b_BNJT[..., :, None] - b_BNJT[..., None, :])
  a_BNJTS = _dot("bnjtk,bnjsk->bnjts", q_BNJTK, k_BNJSK, dtype) * decay_BNJTS
  return _dot("bnjts,bnjsu->bnjtu", a_BNJTS, v_BNJSU, dtype)


def _own_block_reduce(x, y, b_MTK, axis):
  """The sum over ``axis`` of x * y * D_MTSK, D_ts = exp(b_t - b_s) for s <= t (else 0); x and y
  broadcast to [M, T, S, K] (e.g. q_MT1K, k_M1SK).

  XLA:CPU fuses the decays and the products into the reduction (the [T, S, K] tensor, T x larger
  than q, is never stored) when x * y comes first, the mask is added (-inf) before exp rather than
  selected, and no broadcast inside is shared with another reduction: XLA merges identical ones,
  so each call's operands, mask included, pass their own optimisation barrier. (Size-1 axes in the
  shapes made the fused loop ~30x slower: M is all sub-blocks, flattened.)
  """
  mask_TS = jnp.where(_causal(b_MTK.shape[1]), 0.0, -jnp.inf)
  x, y, b_MTK, mask_TS = jax.lax.optimization_barrier((x, y, b_MTK, mask_TS))
  decay_MTSK = jnp.exp(b_MTK[:, :, None] - b_MTK[:, None] + mask_TS[None, :, :, None])
  return jnp.sum(x * y * decay_MTSK, axis=axis)


@jax.custom_vjp
def _own_block_scores(q_MTK, k_MTK, b_MTK):
  """A_MTS = sum_k q_tk k_sk exp(b_tk - b_sk) for s <= t (float32), as one fused reduction.

  The backward pass recomputes the decays D instead of saving them:
  dq_t = sum_s dA_ts k_s D_ts, dk_s = sum_t dA_ts q_t D_ts, db = q dq - k dk.
  """
  return _own_block_reduce(q_MTK[:, :, None], k_MTK[:, None], b_MTK, axis=3)


def _own_block_scores_fwd(q_MTK, k_MTK, b_MTK):
  return _own_block_scores(q_MTK, k_MTK, b_MTK), (q_MTK, k_MTK, b_MTK)


def _own_block_scores_bwd(residuals, da_MTS):
  q_MTK, k_MTK, b_MTK = residuals
  dq_MTK = _own_block_reduce(da_MTS[..., None], k_MTK[:, None], b_MTK, axis=2)
  dk_MSK = _own_block_reduce(da_MTS[..., None], q_MTK[:, :, None], b_MTK, axis=1)
  return dq_MTK, dk_MSK, q_MTK * dq_MTK - k_MTK * dk_MSK


_own_block_scores.defvjp(_own_block_scores_fwd, _own_block_scores_bwd)


def _intra_per_feature(q_MSK, k_MSK, v_MSU, b_MSK, dtype):
  """sum_{s <= t} (q_t * exp(b_t - b_s)) . k_s v_s for M chunks of S steps, in sub-blocks.

  Inside: sub-blocks of T steps (a divisor of S). Keys of the query's own sub-block enter through
  the elementwise decays (``_own_block_scores``); keys of the earlier ones through
  exp(b_t - r) exp(r - b_s), r = b at the end of the sub-block before the query's: one product
  per sub-block, over the keys before it only.
  """
  m, s, _ = q_MSK.shape
  t = math.gcd(s, SUB_CHUNK)
  blocks = lambda x: x.reshape(m * (s // t), t, x.shape[-1]).astype(jnp.float32)  # noqa: E731
  a_MTS = _own_block_scores(blocks(q_MSK), blocks(k_MSK), blocks(b_MSK))
  o_MSU = _dot("mts,msu->mtu", a_MTS, blocks(v_MSU), dtype).reshape(m, s, -1)
  earlier = [jnp.zeros_like(o_MSU[:, :t])]
  for start in range(t, s, t):
    r_M1K = b_MSK[:, start - 1:start]
    q_MTK = q_MSK[:, start:start + t] * jnp.exp(b_MSK[:, start:start + t] - r_M1K)
    k_MSK_before = k_MSK[:, :start] * jnp.exp(r_M1K - b_MSK[:, :start])
    a_MTS = _dot("mtk,msk->mts", q_MTK, k_MSK_before, dtype)
    earlier.append(_dot("mts,msu->mtu", a_MTS, v_MSU[:, :start], dtype))
  return o_MSU + jnp.concatenate(earlier, axis=1)


def _carry_states(u_BNJKU, log_decay, state_BNKU):
  """(the state before each chunk S_BNJKU, the final state): S_{j+1} = a_j S_j + U_j, with the
  chunk decays a = exp(log_decay) (None: 1; [B, N, J]: per head; [B, N, J, K]: per key row)."""
  b, n, _, kd, u = u_BNJKU.shape
  s0_BNKU = jnp.zeros((b, n, kd, u), jnp.float32) if state_BNKU is None else (
      state_BNKU.astype(jnp.float32))
  if log_decay is None:  # a sum: no sequential loop
    after_BNJKU = s0_BNKU[:, :, None] + jnp.cumsum(u_BNJKU, axis=2)
    before_BNJKU = jnp.concatenate([s0_BNKU[:, :, None], after_BNJKU[:, :, :-1]], axis=2)
    return before_BNJKU, after_BNJKU[:, :, -1]
  a_BNJK1 = jnp.exp(log_decay)[..., None] if log_decay.ndim == 4 else (
      jnp.exp(log_decay)[..., None, None])

  def step(s_BNKU, xs):
    a_BNK1, u_BNKU = xs
    return a_BNK1 * s_BNKU + u_BNKU, s_BNKU

  final_BNKU, before_JBNKU = jax.lax.scan(
      step, s0_BNKU, (jnp.moveaxis(a_BNJK1, 2, 0), jnp.moveaxis(u_BNJKU, 2, 0)))
  return jnp.moveaxis(before_JBNKU, 0, 2), final_BNKU


def chunked_form(q_BLNK, k_BLNK, v_BLNU, log_a=None, *, lengths_B=None, state_BNKU=None,
                 normalize=False, chunk=64, dtype=jnp.float32, eps=EPS):
  """(o_BLNU float32, final state_BNKU) of recurrent.py's recurrence, ``chunk`` steps at a time.

  log_a: None, log_a_BLN (per head) or log_a_BLNK (per key feature), all <= 0. ``dtype``: the
  matmul operands' dtype (accumulation, decays and states are float32). Inside, arrays are
  head-major, [B, N, J, T, ...].
  """
  b, l, n, kd = q_BLNK.shape
  u = v_BLNU.shape[-1]
  if normalize:  # z is the state of a constant value 1: one more value column
    v_BLNU = jnp.concatenate([v_BLNU, jnp.ones_like(v_BLNU[..., :1])], axis=-1)
  if lengths_B is not None:  # past each end: keys 0 and decay 1, so the state stops changing
    valid_BL = masks.valid_BL(lengths_B, l)
    k_BLNK = jnp.where(valid_BL[:, :, None, None], k_BLNK, jnp.zeros_like(k_BLNK))
    if log_a is not None:
      valid = valid_BL.reshape(valid_BL.shape + (1,) * (log_a.ndim - 2))
      log_a = jnp.where(valid, log_a, jnp.zeros_like(log_a))
  t = max(1, min(chunk, l))
  j = -(-l // t)

  def chunks(x):  # [B, L, N, ...] -> [B, N, J, T, ...], zero-padded (zero keys, decay 1)
    x = jnp.moveaxis(x, 2, 1)
    x = jnp.pad(x, [(0, 0), (0, 0), (0, j * t - l)] + [(0, 0)] * (x.ndim - 3))
    return x.reshape((b, n, j, t) + x.shape[3:])

  q_BNJTK, k_BNJTK, v_BNJTU = chunks(q_BLNK), chunks(k_BLNK), chunks(v_BLNU)
  if log_a is None:
    o_BNJTU = _intra_plain(q_BNJTK, k_BNJTK, v_BNJTU, dtype)
    q_in, k_out, log_decay = q_BNJTK, k_BNJTK, None
  else:
    cum = jnp.cumsum(chunks(log_a.astype(jnp.float32)), axis=3)  # b_t, [B, N, J, T(, K)]
    log_decay = cum[:, :, :, -1]  # b_T: the whole chunk's decay
    per_key = lambda x: x if x.ndim == 5 else x[..., None]  # noqa: E731
    q_in = q_BNJTK * per_key(jnp.exp(cum))
    k_out = k_BNJTK * per_key(jnp.exp(cum[:, :, :, -1:] - cum))
    if log_a.ndim == 3:
      o_BNJTU = _intra_per_head(q_BNJTK, k_BNJTK, v_BNJTU, cum, dtype)
    else:
      flat = lambda x: x.reshape((b * n * j, t, x.shape[-1]))  # noqa: E731
      o_BNJTU = _intra_per_feature(flat(q_BNJTK), flat(k_BNJTK), flat(v_BNJTU), flat(cum),
                                   dtype).reshape(b, n, j, t, -1)
  u_BNJKU = _dot("bnjsk,bnjsu->bnjku", k_out, v_BNJTU, dtype)
  before_BNJKU, final_BNKU = _carry_states(u_BNJKU, log_decay, state_BNKU)
  o_BNJTU = o_BNJTU + _dot("bnjtk,bnjku->bnjtu", q_in, before_BNJKU, dtype)
  o_BLNU = jnp.moveaxis(o_BNJTU.reshape(b, n, j * t, -1)[:, :, :l], 1, 2)
  if normalize:
    o_BLNU = o_BLNU[..., :u] / (o_BLNU[..., u:] + eps)
  if lengths_B is not None:
    o_BLNU = jnp.where(valid_BL[:, :, None, None], o_BLNU, 0.0)
  return o_BLNU, final_BNKU
