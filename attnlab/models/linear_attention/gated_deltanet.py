"""Gated DeltaNet (Yang et al. 2025): multi-head attention by the gated delta rule
(gated_delta_rule.py), S_t = a_t (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T, o_t = S_t^T q_t.

As fla's GatedDeltaNet, less its short convolutions (as attnlab's DeltaNet, deltanet.py, so that
the two differ by the gates alone): q, k = l2norm(silu(x W)), v = silu(x W_v),
beta_t = sigmoid(x_t W_beta) per head; the decay is Mamba-2's,
log a_t = -exp(A_log) softplus(x_t W_a + dt_bias) per head (A uniform in [1, 16], the step's bias
the inverse softplus of a step log-uniform in [0.001, 0.1]); the output a per-head RMSNorm of o
(one learned scale [K]) times silu(x W_g), then the output projection.

``allow_negative_eigenvalues`` (Grazzi et al. 2025): beta_t = 2 sigmoid(.) in (0, 2), so that
I - beta k k^T has the eigenvalue 1 - beta in (-1, 1) and a_t (I - beta k k^T) eigenvalues in
(-1, 1]; the decay a_t stays in (0, 1).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from attnlab.models import checks, initializers
from attnlab.models.linear_attention import fields, gated_delta_rule
from attnlab.models.linear_attention.deltanet import l2_normalize
from attnlab.models.linear_attention.gated import rms_norm
from attnlab.models.mamba.block import dt_bias_init


def check_fields(d_model, num_heads, chunk, impl="fast", allow_negative_eigenvalues=False) -> None:
  """ValueError naming the first bad field (d_model None: before the width is known)."""
  if d_model is None:
    fields.check_positive("num_heads", num_heads)
  else:
    fields.check_heads(d_model, num_heads)
  fields.check_positive("chunk", chunk)
  checks.check_impl(impl)
  fields.check_bool("allow_negative_eigenvalues", allow_negative_eigenvalues)


def a_log_init(key, shape, dtype=jnp.float32):
  """log A, A uniform in [1, 16] per head (Mamba-2's A_init_range)."""
  return jnp.log(jax.random.uniform(key, shape, jnp.float32, 1.0, 16.0)).astype(dtype)


class GatedDeltaNet(nn.Module):
  """``(x_BLD, lengths_B=None, state=None, *, deterministic=True) -> (y_BLD, state_BNKK)``;
  K = D / N. y is in ``dtype`` (zero past each sequence's end), the state float32."""
  num_heads: int  # N; head size K = D / N (queries, keys and values)
  chunk: int = 32  # time steps per chunk of the chunked form (32: docs/benchmarks.md)
  allow_negative_eigenvalues: bool = False  # beta in (0, 2) instead of (0, 1)
  impl: str = "fast"  # "fast": the chunked form; "reference": the step-by-step recurrence
  dtype: Any = jnp.float32  # compute dtype of the projections and the chunked matmuls
  param_dtype: Any = jnp.float32  # dtype of the stored parameters
  init_scheme: str = initializers.DEFAULT  # dense projections' init (initializers.SCHEMES)

  def state_size(self, d_model: int, length: int) -> int:
    del length
    return d_model * (d_model // self.num_heads)  # N x K x K

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, state=None, *, deterministic=True):
    del deterministic
    d = x_BLD.shape[-1]
    n = self.num_heads
    check_fields(d, n, self.chunk, self.impl, self.allow_negative_eigenvalues)
    kd = d // n
    fields.check_inputs("GatedDeltaNet", x_BLD, lengths_B, state, (n, kd, kd))
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
    a_log_N = self.param("A_log", a_log_init, (n,), self.param_dtype)
    dt_bias_N = self.param("dt_bias", dt_bias_init(0.001, 0.1, 1e-4), (n,), self.param_dtype)
    dt_BLN = jax.nn.softplus(dense(n, "decay")(x_BLD).astype(jnp.float32)
                             + dt_bias_N.astype(jnp.float32)[None, None])
    log_a_BLN = -jnp.exp(a_log_N.astype(jnp.float32))[None, None] * dt_BLN
    args = (q_BLNK * kd ** -0.5, k_BLNK, v_BLNK, beta_BLN, log_a_BLN)
    kwargs = dict(lengths_B=lengths_B, state_BNKU=state)
    if self.impl == "fast":
      o_BLNK, state_BNKK = gated_delta_rule.chunked_form(*args, chunk=self.chunk,
                                                         dtype=self.dtype, **kwargs)
    else:
      o_BLNK, state_BNKK = gated_delta_rule.recurrent_form(*args, **kwargs)
    scale_K = self.param("norm_scale", nn.initializers.ones_init(), (kd,), self.param_dtype)
    o_BLD = rms_norm(o_BLNK, scale_K.astype(jnp.float32)).reshape(x_BLD.shape)
    gate_BLD = nn.Dense(d, use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype,
                        name="gate", **linear)(x_BLD)
    y_BLD = nn.Dense(d, use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype,
                     name="out", **linear)(o_BLD.astype(self.dtype) * nn.silu(gate_BLD))
    return y_BLD, state_BNKK
