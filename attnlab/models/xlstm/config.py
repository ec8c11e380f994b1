"""The xLSTM names' own fields: the mixers ``slstm`` and ``mlstm`` (each layer alone as the mixer
of ``blocks.py``'s blocks, like every other mixer), and the model ``xlstm``, xLSTM's own network of
blocks (xlstm/blocks.py) mixed as xLSTM[a:b]: a mLSTM blocks to b sLSTM blocks, ``ratio="a:b"``
("1:0" mLSTM only, "0:1" sLSTM only, "7:1" the paper's main mix).

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

from attnlab.models import blocks as model_blocks
from attnlab.models import checks, initializers
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
class SLSTMConfig:
  """The sLSTM layer as a mixer; checked on creation (and against the width when resolved)."""
  num_heads: int = 4  # heads N of the block-diagonal recurrence (must divide d_model)
  d_conv: int = 4  # taps of the causal convolution before the i and f gates (0: none)
  impl: str = "fast"  # "fast": projections batched, recurrence scanned; "reference": step by step

  module_name = "slstm"

  def __post_init__(self):
    slstm.check_fields(None, self.num_heads, self.d_conv, self.impl)

  def resolved(self, d_model: int) -> "SLSTMConfig":
    slstm.check_fields(d_model, self.num_heads, self.d_conv)
    return self

  def module(self, d_model: int, *, dtype, init, name) -> nn.Module:
    del d_model  # the layer's width is its input's
    return slstm.SLSTMLayer(num_heads=self.num_heads, d_conv=self.d_conv, impl=self.impl,
                            dtype=dtype, init_scheme=init, name=name)


@dataclasses.dataclass(frozen=True)
class MLSTMConfig:
  """The mLSTM layer (the pre-up-projection block's mixer) as a mixer; checked on creation (and
  against the width when resolved)."""
  num_heads: int = 4  # heads N (must divide expand * d_model)
  expand: int = 2  # the layer's inner width H = expand * d_model
  qkv_block: int = 4  # block size of the q/k/v projections (must divide H)
  d_conv: int = 4  # taps of the causal convolution
  chunk: int = 64  # time steps per chunk of the chunked form
  impl: str = "fast"  # "fast": the chunked form; "reference": step by step

  module_name = "mlstm"

  def __post_init__(self):
    mlstm_layer.check_fields(None, self.num_heads, self.expand, self.qkv_block, self.d_conv,
                             self.chunk, self.impl)

  def resolved(self, d_model: int) -> "MLSTMConfig":
    mlstm_layer.check_fields(d_model, self.num_heads, self.expand, self.qkv_block, self.d_conv,
                             self.chunk)
    return self

  def module(self, d_model: int, *, dtype, init, name) -> nn.Module:
    del d_model  # the layer's width is its input's
    return mlstm_layer.MLSTMLayer(num_heads=self.num_heads, expand=self.expand,
                                  qkv_block=self.qkv_block, d_conv=self.d_conv, chunk=self.chunk,
                                  impl=self.impl, dtype=dtype, init_scheme=init, name=name)


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
  impl: str = "fast"  # both layers' form: "fast" or "reference" (step by step)
  init: str = initializers.DEFAULT  # initializers.SCHEMES: embedding and dense projections
  dtype: Any = jnp.float32  # compute dtype

  @property
  def ff_width(self) -> int:
    """The sLSTM blocks' gated MLP width: d_ff, or ceil(4/3 d_model) for 0 (read through this
    property, so that dataclasses.replace(config, d_model=...) derives it again)."""
    return self.d_ff or -(-4 * self.d_model // 3)

  def resolved_fields(self) -> dict[str, Any]:
    """The fields with the placeholder filled in, as a run's summary shows them."""
    return {**dataclasses.asdict(self), "d_ff": self.ff_width}

  def __post_init__(self):
    model_blocks.check_sizes(d_model=self.d_model, num_layers=self.num_layers)
    if isinstance(self.d_ff, bool) or not isinstance(self.d_ff, int) or self.d_ff < 0:
      raise ValueError(f"d_ff={self.d_ff!r}; must be an int >= 0 (0: ceil(4/3 d_model))")
    model_blocks.check_rate("dropout_rate", self.dropout_rate)
    initializers.check(self.init)
    checks.check_impl(self.impl)
    slstm_positions(self.num_layers, self.ratio, self.slstm_at)
    self.slstm().resolved(self.d_model)
    self.mlstm().resolved(self.d_model)

  def positions(self) -> tuple[int, ...]:
    return slstm_positions(self.num_layers, self.ratio, self.slstm_at)

  def slstm(self) -> SLSTMConfig:
    return SLSTMConfig(self.num_heads, self.d_conv, self.impl)

  def mlstm(self) -> MLSTMConfig:
    return MLSTMConfig(self.num_heads, self.expand, self.qkv_block, self.d_conv, self.chunk,
                       self.impl)

  def mixer(self, i: int) -> nn.Module:
    """Block i's layer: the sLSTM layer in an sLSTM block, the mLSTM layer otherwise."""
    cfg = self.slstm() if i in self.positions() else self.mlstm()
    return cfg.module(self.d_model, dtype=self.dtype, init=self.init,
                      name=f"{cfg.module_name}_{i}")


def backbone(cfg: XLSTMConfig) -> blocks.XLSTMBackbone:
  """The ``xlstm`` model's backbone (the registry's entry)."""
  return blocks.XLSTMBackbone(cfg.mixer, cfg.positions(), cfg.num_layers, cfg.ff_width,
                              cfg.dropout_rate, cfg.dtype, cfg.init)


def state_size(cfg: XLSTMConfig, length: int) -> int:
  """Floats per sequence of the blocks' decoding states after ``length`` tokens."""
  return sum(cfg.mixer(i).state_size(cfg.d_model, length) for i in range(cfg.num_layers))
