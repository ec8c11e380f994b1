"""The linear-attention mixers' own fields: linear_attention (LinearAttention), retnet and gla
(GatedLinearAttention with decay "fixed" / "data"), deltanet (DeltaNet), gated_deltanet
(GatedDeltaNet)."""

from __future__ import annotations

import dataclasses

import flax.linen as nn

from attnlab.models.linear_attention import fields, gated_deltanet
from attnlab.models.linear_attention.deltanet import DeltaNet
from attnlab.models.linear_attention.gated import GatedLinearAttention
from attnlab.models.linear_attention.linear import LinearAttention


@dataclasses.dataclass(frozen=True)
class LinearAttentionConfig:
  """LinearAttention; checked on creation (and against the width when resolved)."""
  num_heads: int = 4  # heads N (must divide d_model)
  feature_map: str = "elu1"  # one of feature_maps.FEATURE_MAPS
  key_dim: int = 0  # per-head query/key size before the feature map; 0: D / N (taylor: 16)
  normalize: bool = True  # divide by phi(q) . sum phi(k)
  chunk: int = 64  # time steps per chunk of the chunked form
  impl: str = "fast"  # "fast": the chunked form; "reference": step by step

  module_name = "linear_attention"

  def __post_init__(self):
    # Everything but the heads' divisibility of the width, which resolved() checks.
    fields.check_linear(self.num_heads, self.num_heads, self.feature_map, self.key_dim, self.chunk,
                        self.impl)

  def resolved(self, d_model: int) -> "LinearAttentionConfig":
    fields.check_linear(d_model, self.num_heads, self.feature_map, self.key_dim, self.chunk)
    return dataclasses.replace(self, key_dim=fields.default_key_dim(
        self.feature_map, self.key_dim, d_model, self.num_heads))

  def module(self, d_model: int, *, dtype, init, name) -> nn.Module:
    return LinearAttention(num_heads=self.num_heads, feature_map=self.feature_map,
                           key_dim=self.key_dim, normalize=self.normalize, chunk=self.chunk,
                           impl=self.impl, dtype=dtype, init_scheme=init, name=name)


@dataclasses.dataclass(frozen=True)
class GatedLinearConfig:
  """GatedLinearAttention; checked on creation (and against the width when resolved)."""
  decay: str = "data"  # one of fields.DECAYS (fixed by the registered name)
  num_heads: int = 4  # heads N (must divide d_model)
  chunk: int = 64  # time steps per chunk of the chunked form
  gate_rank: int = 16  # decay "data": rank of the gate projection W_a
  impl: str = "fast"  # "fast": the chunked form; "reference": step by step

  module_name = "gated_linear_attention"

  def __post_init__(self):
    fields.check_gated(self.num_heads, self.num_heads, self.decay, self.chunk, self.gate_rank, 16.0,
                       self.impl)

  def resolved(self, d_model: int) -> "GatedLinearConfig":
    fields.check_gated(d_model, self.num_heads, self.decay, self.chunk, self.gate_rank, 16.0)
    return self

  def module(self, d_model: int, *, dtype, init, name) -> nn.Module:
    return GatedLinearAttention(num_heads=self.num_heads, decay=self.decay, chunk=self.chunk,
                                gate_rank=self.gate_rank, impl=self.impl, dtype=dtype,
                                init_scheme=init, name=name)


@dataclasses.dataclass(frozen=True)
class DeltaNetConfig:
  """DeltaNet; checked on creation (and against the width when resolved)."""
  num_heads: int = 4  # heads N (must divide d_model)
  chunk: int = 64  # time steps per chunk of the chunked form
  allow_negative_eigenvalues: bool = False  # beta in (0, 2): transition eigenvalues in (-1, 1]
  impl: str = "fast"  # "fast": the chunked form; "reference": step by step

  module_name = "deltanet"

  def __post_init__(self):
    fields.check_delta(self.num_heads, self.num_heads, self.chunk, self.impl)
    fields.check_bool("allow_negative_eigenvalues", self.allow_negative_eigenvalues)

  def resolved(self, d_model: int) -> "DeltaNetConfig":
    fields.check_delta(d_model, self.num_heads, self.chunk)
    return self

  def module(self, d_model: int, *, dtype, init, name) -> nn.Module:
    return DeltaNet(num_heads=self.num_heads, chunk=self.chunk,
                    allow_negative_eigenvalues=self.allow_negative_eigenvalues, impl=self.impl,
                    dtype=dtype, init_scheme=init, name=name)


@dataclasses.dataclass(frozen=True)
class GatedDeltaNetConfig:
  """GatedDeltaNet; checked on creation (and against the width when resolved)."""
  num_heads: int = 4  # heads N (must divide d_model)
  chunk: int = 32  # time steps per chunk of the chunked form (32: docs/benchmarks.md)
  allow_negative_eigenvalues: bool = False  # beta in (0, 2): transition eigenvalues in (-1, 1]
  impl: str = "fast"  # "fast": the chunked form; "reference": step by step

  module_name = "gated_deltanet"

  def __post_init__(self):
    gated_deltanet.check_fields(None, self.num_heads, self.chunk, self.impl,
                                self.allow_negative_eigenvalues)

  def resolved(self, d_model: int) -> "GatedDeltaNetConfig":
    gated_deltanet.check_fields(d_model, self.num_heads, self.chunk)
    return self

  def module(self, d_model: int, *, dtype, init, name) -> nn.Module:
    del d_model  # the layer's width is its input's
    return gated_deltanet.GatedDeltaNet(
        num_heads=self.num_heads, chunk=self.chunk,
        allow_negative_eigenvalues=self.allow_negative_eigenvalues, impl=self.impl, dtype=dtype,
        init_scheme=init, name=name)
