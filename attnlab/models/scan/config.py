"""The parallel-scan mixers' own fields (mingru, minlstm, lru); each layer has width d_model."""

from __future__ import annotations

import dataclasses

import flax.linen as nn

from attnlab.models import blocks, checks
from attnlab.models.scan import lru, mingru, minlstm

GATED = {"mingru": mingru.MinGRU, "minlstm": minlstm.MinLSTM}


@dataclasses.dataclass(frozen=True)
class GatedScanConfig:
  """minGRU or minLSTM; checked on creation."""
  layer: str = "mingru"  # a GATED key (fixed by the registered name)
  impl: str = "fast"  # "fast": the parallel (a, b) scan; "reference": step by step
  log_space: bool = False  # "fast" in log space, the paper's form

  def __post_init__(self):
    if self.layer not in GATED:
      raise ValueError(f"layer={self.layer!r}; allowed: {sorted(GATED)}")
    checks.check_impl(self.impl)

  @property
  def module_name(self) -> str:
    return self.layer

  def module(self, d_model: int, *, dtype, init, name) -> nn.Module:
    return GATED[self.layer](hidden_size=d_model, impl=self.impl, log_space=self.log_space,
                             dtype=dtype, init_scheme=init, name=name)


@dataclasses.dataclass(frozen=True)
class LRUConfig:
  """The LRU; checked on creation."""
  d_state: int = 0  # complex state dimensions P; 0: d_model
  impl: str = "fast"  # "fast": the complex associative scan; "reference": step by step

  module_name = "lru"

  def __post_init__(self):
    if self.d_state:
      blocks.check_sizes(d_state=self.d_state)
    checks.check_impl(self.impl)

  def resolved(self, d_model: int) -> "LRUConfig":
    return dataclasses.replace(self, d_state=self.d_state or d_model)

  def module(self, d_model: int, *, dtype, init, name) -> nn.Module:
    return lru.LRU(hidden_size=d_model, d_state=self.d_state or d_model, impl=self.impl,
                   dtype=dtype, init_scheme=init, name=name)
