"""The registered ``mamba2`` model: Mamba-2 blocks as the mixers of the residual stack
(``attnlab.models.stack``), each followed by the stack's MLP as every stack model is (Mamba-2's
own network stacks the blocks alone, under RMSNorm)."""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from attnlab.models import initializers, stack
from attnlab.models.linear_attention.gated_deltanet import check_bool
from attnlab.models.mamba2 import block


@dataclasses.dataclass(frozen=True)
class Mamba2Config:
  """Mamba-2 blocks in the residual stack; checked on creation."""
  d_model: int = 64  # residual width D
  num_layers: int = 2  # blocks
  num_heads: int = 2  # SSD heads N (must divide expand * d_model; head size expand D / N)
  expand: int = 2  # inner width H = expand * d_model
  d_state: int = 64  # state size per channel (B and C)
  d_conv: int = 4  # taps of the causal convolution
  chunk: int = 64  # time steps per chunk of the chunked form
  allow_negative_eigenvalues: bool = False  # decays 2 exp(dt A) - 1 in (-1, 1)
  d_ff: int = 0  # MLP hidden size; 0: 4 * d_model
  dropout_rate: float = 0.0  # on each block's residual branches
  init: str = initializers.DEFAULT  # initializers.SCHEMES: embedding and dense projections
  dtype: Any = jnp.float32  # compute dtype

  def __post_init__(self):
    stack.check_stack_fields(self)
    block.check_fields(self.d_model, self.expand, self.num_heads, self.d_state, self.d_conv,
                       self.chunk)
    check_bool("allow_negative_eigenvalues", self.allow_negative_eigenvalues)

  def mixer(self, i: int) -> nn.Module:
    return block.Mamba2Block(num_heads=self.num_heads, expand=self.expand, d_state=self.d_state,
                             d_conv=self.d_conv, chunk=self.chunk,
                             allow_negative_eigenvalues=self.allow_negative_eigenvalues,
                             dtype=self.dtype, init_scheme=self.init, name=f"mamba2_{i}")
