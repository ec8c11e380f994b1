"""The registered parallel-scan models (mingru, minlstm, lru): each layer in the residual stack
(``attnlab.models.stack``), with hidden size d_model."""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from attnlab.models import initializers, stack
from attnlab.models.scan import lru, mingru, minlstm

GATED = {"mingru": mingru.MinGRU, "minlstm": minlstm.MinLSTM}


@dataclasses.dataclass(frozen=True)
class GatedStackConfig:
  """minGRU or minLSTM layers in the residual stack; checked on creation."""
  layer: str = "mingru"  # a GATED key (fixed by the registered name)
  d_model: int = 64  # residual width and layer hidden size
  num_layers: int = 2  # blocks
  d_ff: int = 0  # MLP hidden size; 0: 4 * d_model
  dropout_rate: float = 0.0  # on each block's residual branches
  init: str = initializers.DEFAULT  # initializers.SCHEMES: embedding and dense projections
  dtype: Any = jnp.float32  # compute dtype

  def __post_init__(self):
    if self.layer not in GATED:
      raise ValueError(f"layer={self.layer!r}; allowed: {sorted(GATED)}")
    stack.check_stack_fields(self)

  def mixer(self, i: int) -> nn.Module:
    return GATED[self.layer](hidden_size=self.d_model, dtype=self.dtype, init_scheme=self.init,
                             name=f"{self.layer}_{i}")


@dataclasses.dataclass(frozen=True)
class LRUStackConfig:
  """LRU layers in the residual stack; checked on creation."""
  d_model: int = 64  # residual width and the LRU's output size
  num_layers: int = 2  # blocks
  state_size: int = 0  # complex state dimensions P; 0: d_model
  d_ff: int = 0  # MLP hidden size; 0: 4 * d_model
  dropout_rate: float = 0.0  # on each block's residual branches
  init: str = initializers.DEFAULT  # initializers.SCHEMES: embedding and dense projections
  dtype: Any = jnp.float32  # compute dtype

  def __post_init__(self):
    stack.check_stack_fields(self)
    if not self.state_size:
      object.__setattr__(self, "state_size", self.d_model)
    stack.check_sizes(state_size=self.state_size)

  def mixer(self, i: int) -> nn.Module:
    return lru.LRU(hidden_size=self.d_model, state_size=self.state_size, dtype=self.dtype,
                   init_scheme=self.init, name=f"lru_{i}")

