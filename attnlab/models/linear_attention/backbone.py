"""The registered linear-attention models, each layer in the residual stack
(``attnlab.models.stack``): linear_attention (LinearAttention), retnet and gla
(GatedLinearAttention with decay "fixed" / "data"), deltanet (DeltaNet)."""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from attnlab.models import initializers, stack
from attnlab.models.linear_attention import fields
from attnlab.models.linear_attention.deltanet import DeltaNet
from attnlab.models.linear_attention.gated import GatedLinearAttention
from attnlab.models.linear_attention.linear import LinearAttention


@dataclasses.dataclass(frozen=True)
class LinearAttentionConfig:
  """LinearAttention layers in the residual stack; checked on creation."""
  d_model: int = 64  # residual width D
  num_layers: int = 2  # blocks
  num_heads: int = 4  # heads N (must divide d_model)
  feature_map: str = "elu1"  # one of feature_maps.FEATURE_MAPS
  key_dim: int = 0  # per-head query/key size before the feature map; 0: D / N (taylor: 16)
  normalize: bool = True  # divide by phi(q) . sum phi(k)
  chunk: int = 64  # time steps per chunk of the chunked form
  d_ff: int = 0  # MLP hidden size; 0: 4 * d_model
  dropout_rate: float = 0.0  # on each block's residual branches
  init: str = initializers.DEFAULT  # initializers.SCHEMES: embedding and dense projections
  dtype: Any = jnp.float32  # compute dtype

  def __post_init__(self):
    stack.check_stack_fields(self)
    fields.check_linear(self.d_model, self.num_heads, self.feature_map, self.key_dim, self.chunk)
    object.__setattr__(self, "key_dim", fields.default_key_dim(
        self.feature_map, self.key_dim, self.d_model, self.num_heads))

  def mixer(self, i: int) -> nn.Module:
    return LinearAttention(num_heads=self.num_heads, feature_map=self.feature_map,
                           key_dim=self.key_dim, normalize=self.normalize, chunk=self.chunk,
                           dtype=self.dtype, init_scheme=self.init,
                           name=f"linear_attention_{i}")


@dataclasses.dataclass(frozen=True)
class GatedLinearConfig:
  """GatedLinearAttention layers in the residual stack; checked on creation."""
  decay: str = "data"  # one of fields.DECAYS (fixed by the registered name)
  d_model: int = 64  # residual width D
  num_layers: int = 2  # blocks
  num_heads: int = 4  # heads N (must divide d_model)
  chunk: int = 64  # time steps per chunk of the chunked form
  gate_rank: int = 16  # decay "data": rank of the gate projection W_a
  d_ff: int = 0  # MLP hidden size; 0: 4 * d_model
  dropout_rate: float = 0.0  # on each block's residual branches
  init: str = initializers.DEFAULT  # initializers.SCHEMES: embedding and dense projections
  dtype: Any = jnp.float32  # compute dtype

  def __post_init__(self):
    stack.check_stack_fields(self)
    fields.check_gated(self.d_model, self.num_heads, self.decay, self.chunk, self.gate_rank, 16.0)

  def mixer(self, i: int) -> nn.Module:
    return GatedLinearAttention(num_heads=self.num_heads, decay=self.decay, chunk=self.chunk,
                                gate_rank=self.gate_rank, dtype=self.dtype, init_scheme=self.init,
                                name=f"gated_linear_attention_{i}")


@dataclasses.dataclass(frozen=True)
class DeltaNetConfig:
  """DeltaNet layers in the residual stack; checked on creation."""
  d_model: int = 64  # residual width D
  num_layers: int = 2  # blocks
  num_heads: int = 4  # heads N (must divide d_model)
  chunk: int = 64  # time steps per chunk of the chunked form
  allow_negative_eigenvalues: bool = False  # beta in (0, 2): transition eigenvalues in (-1, 1]
  d_ff: int = 0  # MLP hidden size; 0: 4 * d_model
  dropout_rate: float = 0.0  # on each block's residual branches
  init: str = initializers.DEFAULT  # initializers.SCHEMES: embedding and dense projections
  dtype: Any = jnp.float32  # compute dtype

  def __post_init__(self):
    stack.check_stack_fields(self)
    fields.check_delta(self.d_model, self.num_heads, self.chunk)
    if not isinstance(self.allow_negative_eigenvalues, bool):
      raise ValueError(f"allow_negative_eigenvalues={self.allow_negative_eigenvalues!r}; "
                       "allowed: (True, False)")

  def mixer(self, i: int) -> nn.Module:
    return DeltaNet(num_heads=self.num_heads, chunk=self.chunk,
                    allow_negative_eigenvalues=self.allow_negative_eigenvalues, dtype=self.dtype,
                    init_scheme=self.init, name=f"deltanet_{i}")
