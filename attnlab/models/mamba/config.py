"""The ``mamba`` mixer's own fields: the Mamba block (block.py) as a mixer.

Mamba's own network is a stack of Mamba blocks alone (RMSNorm, no MLP). In the residual block each
layer is the pre-norm residual pair, the Mamba block as mixer then the block's MLP, as for every
other mixer: the families then differ in their mixer only.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn

from attnlab.models import checks
from attnlab.models.mamba import block, ssm


@dataclasses.dataclass(frozen=True)
class MambaConfig:
  """The Mamba block; checked on creation."""
  d_state: int = 16  # SSM state size per channel (P)
  expand: int = 2  # inner width = expand * d_model
  d_conv: int = 4  # taps of the causal convolution
  dt_rank: int = 0  # rank of the step-size projection; 0: ceil(d_model / 16)
  impl: str = "fast"  # "fast": the time-chunked selective scan; "reference": step by step

  module_name = "mamba"

  def __post_init__(self):
    block.check_fields(self.expand, self.d_state, self.d_conv, self.dt_rank)
    checks.check_impl(self.impl)

  def resolved(self, d_model: int) -> "MambaConfig":
    return dataclasses.replace(self, dt_rank=self.dt_rank or ssm.dt_rank(d_model))

  def module(self, d_model: int, *, dtype, init, name) -> nn.Module:
    del d_model  # the block's width is its input's
    return block.MambaBlock(expand=self.expand, d_state=self.d_state, d_conv=self.d_conv,
                            dt_rank=self.dt_rank, impl=self.impl, dtype=dtype, init_scheme=init,
                            name=name)
