"""The ``mamba2`` mixer's own fields: the Mamba-2 block (block.py) as a mixer.

Mamba-2's own network stacks the blocks alone (under RMSNorm). In the residual block each layer is
the pre-norm residual pair, the Mamba-2 block as mixer then the block's MLP, as for every other
mixer: the families then differ in their mixer only.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn

from attnlab.models.mamba2 import block


@dataclasses.dataclass(frozen=True)
class Mamba2Config:
  """The Mamba-2 block; checked on creation (and against the width when resolved)."""
  num_heads: int = 2  # SSD heads N (must divide expand * d_model; head size expand D / N)
  expand: int = 2  # inner width H = expand * d_model
  d_state: int = 64  # state size per channel (B and C)
  d_conv: int = 4  # taps of the causal convolution
  chunk: int = 64  # time steps per chunk of the chunked form
  allow_negative_eigenvalues: bool = False  # decays 2 exp(dt A) - 1 in (-1, 1)
  impl: str = "fast"  # "fast": the chunked form; "reference": step by step

  module_name = "mamba2"

  def __post_init__(self):
    block.check_fields(None, self.expand, self.num_heads, self.d_state, self.d_conv, self.chunk,
                       self.impl, self.allow_negative_eigenvalues)

  def resolved(self, d_model: int) -> "Mamba2Config":
    block.check_fields(d_model, self.expand, self.num_heads, self.d_state, self.d_conv,
                       self.chunk)
    return self

  def module(self, d_model: int, *, dtype, init, name) -> nn.Module:
    del d_model  # the block's width is its input's
    return block.Mamba2Block(num_heads=self.num_heads, expand=self.expand, d_state=self.d_state,
                             d_conv=self.d_conv, chunk=self.chunk,
                             allow_negative_eigenvalues=self.allow_negative_eigenvalues,
                             impl=self.impl, dtype=dtype, init_scheme=init, name=name)
