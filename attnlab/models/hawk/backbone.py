"""The registered ``hawk`` model: Hawk's recurrent blocks as the mixers of the residual stack
(``attnlab.models.stack``), whose MLP is the residual block's second half, as in Hawk (there a
gated GeLU MLP of expansion 3 under RMSNorm; here the stack's GeLU MLP of d_ff, 0: 4 * d_model,
under LayerNorm, as for every other stack model)."""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from attnlab.models import initializers, stack
from attnlab.models.hawk import block


@dataclasses.dataclass(frozen=True)
class HawkStackConfig:
  """Hawk recurrent blocks in the residual stack; checked on creation."""
  d_model: int = 64  # residual width D
  num_layers: int = 2  # blocks
  lru_width: int = 0  # the RG-LRU's width; 0: d_model
  num_heads: int = 1  # diagonal blocks of the RG-LRU's gate weights (1: dense gates)
  d_conv: int = 4  # taps of the causal convolution
  d_ff: int = 0  # MLP hidden size; 0: 4 * d_model
  dropout_rate: float = 0.0  # on each block's residual branches
  init: str = initializers.DEFAULT  # initializers.SCHEMES: embedding and dense projections
  dtype: Any = jnp.float32  # compute dtype

  def __post_init__(self):
    stack.check_stack_fields(self)
    if not self.lru_width:
      object.__setattr__(self, "lru_width", self.d_model)
    block.check_fields(self.lru_width, self.num_heads, self.d_conv)

  def mixer(self, i: int) -> nn.Module:
    return block.HawkBlock(lru_width=self.lru_width, num_heads=self.num_heads, d_conv=self.d_conv,
                           dtype=self.dtype, init_scheme=self.init, name=f"hawk_{i}")
