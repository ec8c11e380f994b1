"""The dense position-wise feed-forward of a Transformer block (the MoE one is ``moe.py``)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from attnlab.models import initializers


class FeedForward(nn.Module):
  """Dense(F) -> gelu -> dropout -> Dense(D)."""
  d_ff: int  # F
  dropout_rate: float = 0.0  # on the hidden activations
  dtype: Any = jnp.float32  # compute dtype
  param_dtype: Any = jnp.float32  # parameter dtype
  init_scheme: str = initializers.DEFAULT  # initializers.SCHEMES

  @nn.compact
  def __call__(self, x_BLD, mask_BL=None, *, deterministic=True):
    del mask_BL  # position-wise: padding needs no special care
    dense = lambda n, fan_in, name: nn.Dense(  # noqa: E731
        n, dtype=self.dtype, param_dtype=self.param_dtype, name=name,
        **initializers.linear(self.init_scheme, fan_in))
    d = x_BLD.shape[-1]
    h_BLF = nn.gelu(dense(self.d_ff, d, "wi")(x_BLD))
    h_BLF = nn.Dropout(self.dropout_rate)(h_BLF, deterministic=deterministic)
    return dense(d, self.d_ff, "wo")(h_BLF)
