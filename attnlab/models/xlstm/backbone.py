"""The registered xLSTM models: ``slstm`` and ``mlstm`` (each layer alone as the residual stack's
mixer, ``attnlab.models.stack``), and ``xlstm``, xLSTM's own network of blocks (blocks.py) mixed
as xLSTM[a:b]: a mLSTM blocks to b sLSTM blocks, ``ratio="a:b"`` ("1:0" mLSTM only, "0:1" sLSTM
only, "7:1" the paper's main mix).

Where the sLSTM blocks go (``slstm_positions``): of num_layers blocks, round(num_layers b / (a + b))
are sLSTM blocks, at least one and at most num_layers - 1 when a and b are both > 0 (so that
both kinds are present from two blocks on), at evenly spread indices floor((j + 1) num_layers /
(s + 1)) for the j-th of s (7:1 with 8 blocks: block 4; with 2 blocks: block 1; with 24 blocks:
6, 12, 18). The paper places them at given indices per model size; ``slstm_at`` ("3,5") sets the
indices instead, overriding ``ratio``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from attnlab.models import initializers, stack
from attnlab.models.xlstm import blocks, mlstm_layer, slstm


def parse_ratio(ratio: str) -> tuple[int, int]:
  """ "7:1" -> (7, 1); ValueError naming the field otherwise."""
  parts = str(ratio).split(":")
  try:
    a, b = (int(p) for p in parts)
  except ValueError:
    a = b = -1
  if len(parts) != 2 or a < 0 or b < 0 or a + b == 0:
    raise ValueError(f"ratio={ratio!r}; must be 'a:b' with ints a, b >= 0, not both 0 (mLSTM to "
                     "sLSTM blocks: '1:0', '0:1', '7:1')")
  return a, b


def slstm_positions(num_layers: int, ratio: str, slstm_at: str = "") -> tuple[int, ...]:
  """The indices of the sLSTM blocks (see the module docstring)."""
  if str(slstm_at).strip():
    try:
      at = tuple(sorted({int(p) for p in str(slstm_at).split(",")}))
    except ValueError:
      at = (-1,)
    if not all(0 <= i < num_layers for i in at):
      raise ValueError(f"slstm_at={slstm_at!r}; must be comma-separated block indices in "
                       f"[0, {num_layers}) (num_layers={num_layers})")
    return at
  a, b = parse_ratio(ratio)
  s = round(num_layers * b / (a + b))
  if a and b and num_layers > 1:
    s = min(max(s, 1), num_layers - 1)
  return tuple(math.floor((j + 1) * num_layers / (s + 1)) for j in range(s)) if s < num_layers \
      else tuple(range(num_layers))


@dataclasses.dataclass(frozen=True)
class SLSTMStackConfig:
  """sLSTM layers in the residual stack; checked on creation."""
  d_model: int = 64  # residual width D
  num_layers: int = 2  # blocks
  num_heads: int = 4  # heads N of the block-diagonal recurrence (must divide d_model)
  d_conv: int = 4  # taps of the causal convolution before the i and f gates (0: none)
  d_ff: int = 0  # MLP hidden size; 0: 4 * d_model
  dropout_rate: float = 0.0  # on each block's residual branches
  init: str = initializers.DEFAULT  # initializers.SCHEMES: embedding and dense projections
  dtype: Any = jnp.float32  # compute dtype

  def __post_init__(self):
    stack.check_stack_fields(self)
    slstm.check_fields(self.d_model, self.num_heads, self.d_conv)

  def mixer(self, i: int) -> nn.Module:
    return slstm.SLSTMLayer(num_heads=self.num_heads, d_conv=self.d_conv, dtype=self.dtype,
                            init_scheme=self.init, name=f"slstm_{i}")


@dataclasses.dataclass(frozen=True)
class MLSTMStackConfig:
  """mLSTM layers in the residual stack; checked on creation."""
  d_model: int = 64  # residual width D
  num_layers: int = 2  # blocks
  num_heads: int = 4  # heads N (must divide expand * d_model)
  expand: int = 2  # the layer's inner width H = expand * d_model
  qkv_block: int = 4  # block size of the q/k/v projections (must divide H)
  d_conv: int = 4  # taps of the causal convolution
  chunk: int = 64  # time steps per chunk of the chunked form
  d_ff: int = 0  # MLP hidden size; 0: 4 * d_model
  dropout_rate: float = 0.0  # on each block's residual branches
  init: str = initializers.DEFAULT  # initializers.SCHEMES: embedding and dense projections
  dtype: Any = jnp.float32  # compute dtype

  def __post_init__(self):
    stack.check_stack_fields(self)
    mlstm_layer.check_fields(self.d_model, self.num_heads, self.expand, self.qkv_block,
                             self.d_conv, self.chunk)

  def mixer(self, i: int) -> nn.Module:
    return mlstm_layer.MLSTMLayer(num_heads=self.num_heads, expand=self.expand,
                                  qkv_block=self.qkv_block, d_conv=self.d_conv, chunk=self.chunk,
                                  dtype=self.dtype, init_scheme=self.init, name=f"mlstm_{i}")


@dataclasses.dataclass(frozen=True)
class XLSTMConfig:
  """xLSTM[a:b]: mLSTM and sLSTM blocks (blocks.py); checked on creation."""
  d_model: int = 64  # residual width D
  num_layers: int = 2  # blocks
  ratio: str = "7:1"  # xLSTM[a:b], mLSTM to sLSTM blocks
  slstm_at: str = ""  # comma-separated sLSTM block indices ("": from ratio, evenly spread)
  num_heads: int = 4  # heads of both layers (must divide d_model and expand * d_model)
  expand: int = 2  # the mLSTM layer's inner width H = expand * d_model
  qkv_block: int = 4  # block size of the mLSTM's q/k/v projections
  d_conv: int = 4  # taps of both layers' causal convolutions
  chunk: int = 64  # time steps per chunk of the mLSTM's chunked form
  d_ff: int = 0  # the sLSTM blocks' gated MLP width; 0: ceil(4/3 d_model), the paper's factor
  dropout_rate: float = 0.0  # on each block's residual branches
  init: str = initializers.DEFAULT  # initializers.SCHEMES: embedding and dense projections
  dtype: Any = jnp.float32  # compute dtype

  def __post_init__(self):
    if not self.d_ff and isinstance(self.d_model, int):
      object.__setattr__(self, "d_ff", -(-4 * self.d_model // 3))
    stack.check_stack_fields(self)
    slstm_positions(self.num_layers, self.ratio, self.slstm_at)
    slstm.check_fields(self.d_model, self.num_heads, self.d_conv)
    mlstm_layer.check_fields(self.d_model, self.num_heads, self.expand, self.qkv_block,
                             self.d_conv, self.chunk)

  def positions(self) -> tuple[int, ...]:
    return slstm_positions(self.num_layers, self.ratio, self.slstm_at)

  def mixer(self, i: int) -> nn.Module:
    if i in self.positions():
      return slstm.SLSTMLayer(num_heads=self.num_heads, d_conv=self.d_conv, dtype=self.dtype,
                              init_scheme=self.init, name=f"slstm_{i}")
    return mlstm_layer.MLSTMLayer(num_heads=self.num_heads, expand=self.expand,
                                  qkv_block=self.qkv_block, d_conv=self.d_conv, chunk=self.chunk,
                                  dtype=self.dtype, init_scheme=self.init, name=f"mlstm_{i}")


def xlstm_backbone(cfg: XLSTMConfig) -> blocks.XLSTMBackbone:
  return blocks.XLSTMBackbone(cfg.mixer, cfg.positions(), cfg.num_layers, cfg.d_ff,
                              cfg.dropout_rate, cfg.dtype, cfg.init)
