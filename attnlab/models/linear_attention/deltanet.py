"""DeltaNet (Schlag et al. 2021; Yang et al. 2024): multi-head attention by the delta rule
(delta_rule.py), S_t = S_{t-1} + beta_t k_t (v_t - S_{t-1}^T k_t)^T, o_t = S_t^T q_t.

As in fla's DeltaNet without its short convolutions: q, k = l2norm(silu(x W)), v = silu(x W_v),
beta_t = sigmoid(x_t W_beta) per head (``allow_negative_eigenvalues``: 2 sigmoid, in (0, 2), so that
I - beta k k^T has the eigenvalue 1 - beta in (-1, 1); Grazzi et al. 2025); then a per-head RMSNorm
of o (one learned scale [K]) and the output projection.

Decoding: (x_BLD, lengths_B, state) -> (y_BLD, final_state_BNKK) on one step at a time
(L = 1), passing each call's final state to the next.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from attnlab.models import initializers
from attnlab.models.linear_attention import delta_rule, fields
from attnlab.models.linear_attention.gated import rms_norm

L2_EPS = 1e-6  # inside the square root of the keys' and queries' L2 norm


def l2_normalize(x_BLNK):
  x_BLNK = x_BLNK.astype(jnp.float32)
  return x_BLNK * jax.lax.rsqrt(jnp.sum(x_BLNK ** 2, axis=-1, keepdims=True) + L2_EPS)


class DeltaNet(nn.Module):
  """A mixer (models/__init__.py): (x_BLD, lengths_B=None, state=None) -> (y_BLD, final_state_BNKK); K = D / N.

  y is in ``dtype`` (zero past each sequence's end), the state float32.
  """
  num_heads: int  # N; head size K = D / N (queries, keys and values)
  chunk: int = 64  # time steps per chunk of the chunked form
  allow_negative_eigenvalues: bool = False  # beta in (0, 2) instead of (0, 1)
  impl: str = "fast"  # "fast": chunked.py's chunked form; "reference": recurrent.py, step by step
  dtype: Any = jnp.float32  # compute dtype of the projections and the chunked matmuls
  param_dtype: Any = jnp.float32  # dtype of the stored parameters
  init_scheme: str = initializers.DEFAULT  # dense projections' init (initializers.SCHEMES)

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, state=None, *, deterministic=True):
    del deterministic  # no dropout inside
    d = x_BLD.shape[-1]
    n = self.num_heads
    fields.check_delta(d, n, self.chunk, self.impl)
    kd = d // n
    fields.check_inputs("DeltaNet", x_BLD, lengths_B, state, (n, kd, kd))
    linear = initializers.linear(self.init_scheme, d)
    dense = lambda features, name: nn.DenseGeneral(  # noqa: E731
        features, use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype, name=name,
        **linear)
    q_BLNK = l2_normalize(nn.silu(dense((n, kd), "query")(x_BLD)))
    k_BLNK = l2_normalize(nn.silu(dense((n, kd), "key")(x_BLD)))
    v_BLNK = nn.silu(dense((n, kd), "value")(x_BLD))
    beta_BLN = jax.nn.sigmoid(dense(n, "beta")(x_BLD).astype(jnp.float32))
    if self.allow_negative_eigenvalues:
      beta_BLN = 2.0 * beta_BLN
    kwargs = dict(lengths_B=lengths_B, state_BNKU=state)
    if self.impl == "fast":
      o_BLNK, state_BNKK = delta_rule.chunked_form(q_BLNK, k_BLNK, v_BLNK, beta_BLN,
                                                   chunk=self.chunk, dtype=self.dtype, **kwargs)
    else:
      o_BLNK, state_BNKK = delta_rule.recurrent_form(q_BLNK, k_BLNK, v_BLNK, beta_BLN, **kwargs)
    scale_K = self.param("norm_scale", nn.initializers.ones_init(), (kd,), self.param_dtype)
    o_BLD = rms_norm(o_BLNK, scale_K.astype(jnp.float32)).reshape(x_BLD.shape)
    y_BLD = nn.Dense(d, use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype,
                     name="out", **linear)(o_BLD.astype(self.dtype))
    return y_BLD, state_BNKK

  def state_size(self, d_model: int, length: int) -> int:
    """S: N heads of [K, K], K = D / N, whatever the length."""
    del length
    return d_model * (d_model // self.num_heads)
