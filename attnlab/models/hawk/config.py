"""The ``hawk`` mixer's own fields: Hawk's recurrent block (block.py) as a mixer. In the residual
block its MLP is the block's second half, as in Hawk (there a gated GeLU MLP of expansion 3 under
RMSNorm; here the block's GeLU MLP of d_ff under LayerNorm, as for every other mixer)."""

from __future__ import annotations

import dataclasses

import flax.linen as nn

from attnlab.models import checks
from attnlab.models.hawk import block


@dataclasses.dataclass(frozen=True)
class HawkConfig:
  """Hawk's recurrent block; checked on creation (and against the width when resolved)."""
  lru_width: int = 0  # the RG-LRU's width; 0: d_model
  num_heads: int = 1  # diagonal blocks of the RG-LRU's gate weights (1: dense gates)
  d_conv: int = 4  # taps of the causal convolution
  impl: str = "fast"  # "fast": the parallel / time-chunked scan; "reference": step by step

  module_name = "hawk"

  def __post_init__(self):
    block.check_fields(self.lru_width, self.num_heads, self.d_conv)
    checks.check_impl(self.impl)

  def resolved(self, d_model: int) -> "HawkConfig":
    resolved = dataclasses.replace(self, lru_width=self.lru_width or d_model)
    block.check_fields(resolved.lru_width, self.num_heads, self.d_conv)
    return resolved

  def module(self, d_model: int, *, dtype, init, name) -> nn.Module:
    del d_model  # the block's width is its input's (lru_width 0: the same)
    return block.HawkBlock(lru_width=self.lru_width, num_heads=self.num_heads, d_conv=self.d_conv,
                           impl=self.impl, dtype=dtype, init_scheme=init, name=name)
