"""The registered ``mamba`` model: Mamba blocks as the mixers of the residual stack
(``attnlab.models.stack``).

Mamba's own network is a stack of Mamba blocks alone (RMSNorm, no MLP). Here each block is the
stack's pre-norm residual pair, the Mamba block as mixer then the stack's MLP (d_ff, 0: 4 *
d_model), as for every other stack model: the families then differ in their mixer only.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from attnlab.models import initializers, stack
from attnlab.models.mamba import block, ssm


@dataclasses.dataclass(frozen=True)
class MambaStackConfig:
  """Mamba blocks in the residual stack; checked on creation."""
  d_model: int = 64  # residual width D
  num_layers: int = 2  # blocks
  d_state: int = 16  # SSM state size per channel (P)
  expand: int = 2  # inner width = expand * d_model
  d_conv: int = 4  # taps of the causal convolution
  dt_rank: int = 0  # rank of the step-size projection; 0: ceil(d_model / 16)
  d_ff: int = 0  # MLP hidden size; 0: 4 * d_model
  dropout_rate: float = 0.0  # on each block's residual branches
  init: str = initializers.DEFAULT  # initializers.SCHEMES: embedding and dense projections
  dtype: Any = jnp.float32  # compute dtype

  def __post_init__(self):
    stack.check_stack_fields(self)
    block.check_fields(self.expand, self.d_state, self.d_conv, self.dt_rank)
    if not self.dt_rank:
      object.__setattr__(self, "dt_rank", ssm.dt_rank(self.d_model))

  def mixer(self, i: int) -> nn.Module:
    return block.MambaBlock(expand=self.expand, d_state=self.d_state, d_conv=self.d_conv,
                            dt_rank=self.dt_rank, dtype=self.dtype, init_scheme=self.init,
                            name=f"mamba_{i}")
