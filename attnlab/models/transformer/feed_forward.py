"""The dense position-wise feed-forward of a Transformer block (the MoE one is ``moe.py``)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp


class FeedForward(nn.Module):
  """Dense(F) -> gelu -> dropout -> Dense(D)."""
  d_ff: int  # F
  dropout_rate: float = 0.0  # on the hidden activations
  dtype: Any = jnp.float32  # compute dtype
  param_dtype: Any = jnp.float32  # parameter dtype

  @nn.compact
  def __call__(self, x_BLD, mask_BL=None, *, deterministic=True):
    del mask_BL  # position-wise: padding needs no special care
    dense = lambda n, name: nn.Dense(n, dtype=self.dtype, param_dtype=self.param_dtype, name=name)
    h_BLF = nn.gelu(dense(self.d_ff, "wi")(x_BLD))
    h_BLF = nn.Dropout(self.dropout_rate)(h_BLF, deterministic=deterministic)
    return dense(x_BLD.shape[-1], "wo")(h_BLF)
