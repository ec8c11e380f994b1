"""Linear attention as the recurrence it is: the definition, and the reference for chunked.py.

  S_t = diag(a_t) S_{t-1} + k_t v_t^T      (state [K, U] per head)
  z_t = a_t * z_{t-1} + k_t                (normaliser [K], only with ``normalize``)
  o_t = q_t^T S_t,  or  q_t^T S_t / (q_t . z_t + eps) with ``normalize``

q and k are already feature-mapped (feature_maps.py). The decay a_t = exp(log_a_t) is 1 without
``log_a`` (plain linear attention), one number per head and step for log_a_BLN (RetNet's fixed
gamma), or one per key feature for log_a_BLNK (GLA's data-dependent gate). Run step by step with
``lax.scan`` in float32.

State convention (shared with chunked.py): one array state_BNKU; with ``normalize`` its last column
is z, i.e. it is the state of values [v, 1] (U = value size + 1). Per-sequence lengths: the state
stops changing at t >= length (the final state is the state at length - 1) and outputs there are 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from attnlab.models import masks

EPS = 1e-6  # added to the normaliser q . z


def decay_factors(log_a, shape_BLNK):
  """a_BLNK = exp(log_a) (1 without log_a), the decay broadcast over the key features."""
  if log_a is None:
    return jnp.ones(shape_BLNK, jnp.float32)
  log_a = log_a.astype(jnp.float32)
  if log_a.ndim == 3:
    log_a = log_a[..., None]
  return jnp.broadcast_to(jnp.exp(log_a), shape_BLNK)


def recurrent_form(q_BLNK, k_BLNK, v_BLNU, log_a=None, *, lengths_B=None, state_BNKU=None,
                   normalize=False, eps=EPS):
  """(o_BLNU float32, final state_BNKU) of the recurrence above, one step at a time."""
  b, l, n, kd = q_BLNK.shape
  u = v_BLNU.shape[-1]
  f32 = lambda x: jnp.moveaxis(x.astype(jnp.float32), 1, 0)  # noqa: E731  time-major
  s_BNKU = jnp.zeros((b, n, kd, u), jnp.float32)
  z_BNK = jnp.zeros((b, n, kd), jnp.float32)
  if state_BNKU is not None:
    state_BNKU = state_BNKU.astype(jnp.float32)
    s_BNKU = state_BNKU[..., :u]
    if normalize:
      z_BNK = state_BNKU[..., u]
  keep_LB = jnp.ones((l, b), bool) if lengths_B is None else masks.valid_BL(lengths_B, l).T

  def step(carry, xs):
    s_BNKU, z_BNK = carry
    q_BNK, k_BNK, v_BNU, a_BNK, keep_B = xs
    keep_B11 = keep_B[:, None, None]
    s_BNKU = jnp.where(keep_B11[..., None],
                       a_BNK[..., None] * s_BNKU + k_BNK[..., :, None] * v_BNU[..., None, :],
                       s_BNKU)
    z_BNK = jnp.where(keep_B11, a_BNK * z_BNK + k_BNK, z_BNK)
    o_BNU = jnp.einsum("bnk,bnku->bnu", q_BNK, s_BNKU)
    if normalize:
      o_BNU = o_BNU / (jnp.einsum("bnk,bnk->bn", q_BNK, z_BNK)[..., None] + eps)
    return (s_BNKU, z_BNK), jnp.where(keep_B11, o_BNU, 0.0)

  xs = (f32(q_BLNK), f32(k_BLNK), f32(v_BLNU), f32(decay_factors(log_a, q_BLNK.shape)), keep_LB)
  (s_BNKU, z_BNK), o_LBNU = jax.lax.scan(step, (s_BNKU, z_BNK), xs)
  final_BNKU = jnp.concatenate([s_BNKU, z_BNK[..., None]], axis=-1) if normalize else s_BNKU
  return jnp.moveaxis(o_LBNU, 0, 1), final_BNKU
