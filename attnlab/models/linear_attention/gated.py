"""Gated linear attention: linear attention whose state decays, S_t = diag(a_t) S_{t-1} + k_t v_t^T,
o_t = q_t^T S_t (no feature map, no normaliser), with the ``decay``

  none   a_t = 1
  fixed  a_t = gamma_h = 1 - 2^(-5-h) for head h (Sun et al. 2023, RetNet's retention)
  data   a_t = sigmoid(x_t W_a + b)^(1/tau) per key feature, W_a = W_down W_up of rank
         ``gate_rank`` (Yang et al. 2024, GLA: rank 16, tau = 16)

Queries are scaled by K^-1/2. The output is GLA's: a per-head RMSNorm of o (one learned scale [K]
shared by the heads), times a swish gate swish(x W_g), then the output projection. RetNet's own
output differs in small ways not kept here: a GroupNorm instead of the RMSNorm, xPos rotations of q
and k.

Decoding: (x_BLD, lengths_B, state) -> (y_BLD, final_state_BNKK) on one step at a time
(L = 1), passing each call's final state to the next.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from attnlab.models import initializers
from attnlab.models.linear_attention import chunked, fields, recurrent

NORM_EPS = 1e-6  # the RMSNorm's epsilon


def retnet_log_gamma(num_heads: int):
  """log gamma_N, gamma_h = 1 - 2^(-5-h): RetNet's per-head decays (slower for later heads)."""
  return jnp.log1p(-jnp.exp2(-5.0 - jnp.arange(num_heads, dtype=jnp.float32)))


def rms_norm(o_BLNK, scale_K):
  """o / rms(o) over each head's features, times scale (float32)."""
  o_BLNK = o_BLNK.astype(jnp.float32)
  rms_BLN1 = jax.lax.rsqrt(jnp.mean(o_BLNK ** 2, axis=-1, keepdims=True) + NORM_EPS)
  return o_BLNK * rms_BLN1 * scale_K.reshape(1, 1, 1, -1)


class GatedLinearAttention(nn.Module):
  """A mixer (models/__init__.py): (x_BLD, lengths_B=None, state=None) -> (y_BLD, final_state_BNKK); K = D / N.

  y is in ``dtype`` (zero past each sequence's end), the state float32.
  """
  num_heads: int  # N; head size K = D / N (queries, keys and values)
  decay: str = "data"  # one of fields.DECAYS
  chunk: int = 64  # time steps per chunk of the chunked form
  gate_rank: int = 16  # "data": rank of W_a
  gate_temperature: float = 16.0  # "data": tau, alpha = sigmoid(.)^(1/tau) (near 1 at init)
  impl: str = "fast"  # "fast": chunked.py's chunked form; "reference": recurrent.py, step by step
  dtype: Any = jnp.float32  # compute dtype of the projections and the chunked matmuls
  param_dtype: Any = jnp.float32  # dtype of the stored parameters
  init_scheme: str = initializers.DEFAULT  # dense projections' init (initializers.SCHEMES)

  def _log_decay(self, x_BLD, n, kd):
    """None, log_a_BLN (fixed) or log_a_BLNK (data), float32."""
    if self.decay == "none":
      return None
    b, l, _ = x_BLD.shape
    if self.decay == "fixed":
      return jnp.broadcast_to(retnet_log_gamma(n)[None, None], (b, l, n))
    h_BLW = nn.Dense(self.gate_rank, use_bias=False, dtype=self.dtype,
                     param_dtype=self.param_dtype, name="gate_down",
                     **initializers.linear(self.init_scheme, x_BLD.shape[-1]))(x_BLD)
    logits_BLNK = nn.DenseGeneral((n, kd), dtype=self.dtype, param_dtype=self.param_dtype,
                                  name="gate_up",
                                  **initializers.linear(self.init_scheme, self.gate_rank))(h_BLW)
    return jax.nn.log_sigmoid(logits_BLNK.astype(jnp.float32)) / self.gate_temperature

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, state=None, *, deterministic=True):
    del deterministic  # no dropout inside
    d = x_BLD.shape[-1]
    n = self.num_heads
    fields.check_gated(d, n, self.decay, self.chunk, self.gate_rank, self.gate_temperature,
                       self.impl)
    kd = d // n
    fields.check_inputs("GatedLinearAttention", x_BLD, lengths_B, state,
                        (n, kd, kd))
    linear = initializers.linear(self.init_scheme, d)
    dense = lambda name: nn.DenseGeneral(  # noqa: E731
        (n, kd), use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype, name=name,
        **linear)
    q_BLNK = dense("query")(x_BLD) * kd ** -0.5
    k_BLNK = dense("key")(x_BLD)
    v_BLNK = dense("value")(x_BLD)
    log_a = self._log_decay(x_BLD, n, kd)
    kwargs = dict(lengths_B=lengths_B, state_BNKU=state)
    if self.impl == "fast":
      o_BLNK, state_BNKK = chunked.chunked_form(q_BLNK, k_BLNK, v_BLNK, log_a, chunk=self.chunk,
                                                dtype=self.dtype, **kwargs)
    else:
      o_BLNK, state_BNKK = recurrent.recurrent_form(q_BLNK, k_BLNK, v_BLNK, log_a, **kwargs)
    scale_K = self.param("norm_scale", nn.initializers.ones_init(), (kd,), self.param_dtype)
    o_BLD = rms_norm(o_BLNK, scale_K.astype(jnp.float32)).reshape(x_BLD.shape)
    gate_BLD = nn.Dense(d, use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype,
                        name="gate", **linear)(x_BLD)
    y_BLD = nn.Dense(d, use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype,
                     name="out", **linear)((o_BLD.astype(self.dtype) * nn.swish(gate_BLD)))
    return y_BLD, state_BNKK

  def state_size(self, d_model: int, length: int) -> int:
    """S: N heads of [K, K], K = D / N, whatever the length."""
    del length
    return d_model * (d_model // self.num_heads)
