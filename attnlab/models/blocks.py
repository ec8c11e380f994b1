"""The two blocks any mixer (models/__init__.py) sits in, by the model section's ``block`` field.

  residual  x = x + Dropout(mixer_i(LayerNorm(x), lengths)),  x = x + Dropout(MLP(LayerNorm(x)))
            for each of num_layers blocks (pre-norm, gelu MLP of width d_ff), then a final
            LayerNorm: the block of Zoology and MAD, the Transformer's without its positions.
  stacked   x = Dropout(mixer_i(x, lengths)) between layers, the top layer's outputs returned: no
            residual, norm or MLP, the classic recurrent stack (DeepMind's Chomsky-hierarchy
            setup). The classic cells stack as PyTorch's multi-layer nn.RNN/LSTM/GRU does, in one
            ``RNN`` module (rnn/layer.py) with PyTorch's parameter names.

A ``MixerStack`` is what a mixer name's model section resolves to: the block's fields and one
(name prefix, mixer config) pair per layer (the same config repeated, or a hybrid's list).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp

from attnlab.models import initializers

BLOCKS = ("residual", "stacked")


def check_sizes(**sizes) -> None:
  """ValueError naming the first size field that is not an int >= 1."""
  for name, value in sizes.items():
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      raise ValueError(f"{name}={value!r}; must be an int >= 1")


def check_rate(name: str, value: float) -> None:
  if not 0.0 <= value < 1.0:
    raise ValueError(f"{name}={value}; must be in [0, 1)")


@dataclasses.dataclass(frozen=True)
class BlockConfig:
  """The fields every mixer name's model section has besides the mixer's own; checked on creation."""
  block: str = "residual"  # one of BLOCKS (a name's default is its registry entry's first block)
  d_model: int = 64  # residual width D: the embedding's and every mixer's width
  num_layers: int = 2  # blocks (mixers)
  d_ff: int = 0  # the residual block's MLP hidden size; 0: 4 * d_model (stacked: must stay 0)
  dropout_rate: float = 0.0  # residual: on each block's branches; stacked: between layers
  init: str = initializers.DEFAULT  # initializers.SCHEMES: embedding and dense projections
  dtype: Any = jnp.float32  # compute dtype (set by the run's compute_dtype)

  def __post_init__(self):
    if self.block not in BLOCKS:
      raise ValueError(f"block={self.block!r}; allowed: {BLOCKS}")
    check_sizes(d_model=self.d_model, num_layers=self.num_layers)
    if isinstance(self.d_ff, bool) or not isinstance(self.d_ff, int) or self.d_ff < 0:
      raise ValueError(f"d_ff={self.d_ff!r}; must be an int >= 0 (0: 4 * d_model)")
    if self.block == "stacked" and self.d_ff:
      raise ValueError(f"d_ff={self.d_ff} sizes the residual block's MLP; block='stacked' has none "
                       "(use d_ff=0)")
    check_rate("dropout_rate", self.dropout_rate)
    initializers.check(self.init)


@dataclasses.dataclass(frozen=True)
class MixerStack:
  """A mixer name's resolved model: the block, the name's own config (the mixer's, or a hybrid's
  list) and, per layer, (parameter-name prefix, mixer config).

  A mixer config has ``module(d_model, *, dtype, init, name)`` (the mixer module) and may have
  ``stacked(block)``, its own stacked backbone (the classic cells' multi-layer RNN).
  """
  block: BlockConfig
  config: Any  # the model section's own fields, resolved (a mixer config, or hybrid.HybridConfig)
  layers: tuple  # ((prefix, mixer config), ...), one per layer

  def mixer(self, i: int) -> nn.Module:
    prefix, cfg = self.layers[i]
    b = self.block
    return cfg.module(b.d_model, dtype=b.dtype, init=b.init, name=f"{prefix}_{i}")


class ResidualStack(nn.Module):
  """Pre-norm residual blocks around a mixer and an MLP; x_BLD -> y_BLD."""
  make_mixer: Callable[[int], nn.Module]  # block index -> the mixer module (named by the caller)
  d_model: int  # residual width D
  num_layers: int  # blocks
  d_ff: int  # MLP hidden size
  dropout_rate: float = 0.0  # on each block's residual branches
  dtype: Any = jnp.float32  # compute dtype
  init_scheme: str = initializers.DEFAULT  # the MLP's (initializers.SCHEMES)

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, *, deterministic=True):
    drop = nn.Dropout(self.dropout_rate, deterministic=deterministic)
    for i in range(self.num_layers):
      h_BLD = nn.LayerNorm(dtype=self.dtype, name=f"norm_seq_{i}")(x_BLD)
      h_BLD, _ = self.make_mixer(i)(h_BLD, lengths_B, deterministic=deterministic)
      x_BLD = x_BLD + drop(h_BLD)
      h_BLD = nn.LayerNorm(dtype=self.dtype, name=f"norm_mlp_{i}")(x_BLD)
      h_BLF = nn.gelu(nn.Dense(self.d_ff, dtype=self.dtype, name=f"mlp_in_{i}",
                               **initializers.linear(self.init_scheme, self.d_model))(h_BLD))
      x_BLD = x_BLD + drop(nn.Dense(self.d_model, dtype=self.dtype, name=f"mlp_out_{i}",
                                    **initializers.linear(self.init_scheme, self.d_ff))(h_BLF))
    return nn.LayerNorm(dtype=self.dtype, name="norm_final")(x_BLD)


class StackedLayers(nn.Module):
  """Mixers one on another, dropout between them; x_BLD -> the top layer's y_BLD."""
  make_mixer: Callable[[int], nn.Module]  # layer index -> the mixer module (named by the caller)
  num_layers: int  # layers
  dropout_rate: float = 0.0  # between layers

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, *, deterministic=True):
    for i in range(self.num_layers):
      if i:
        x_BLD = nn.Dropout(self.dropout_rate)(x_BLD, deterministic=deterministic)
      x_BLD, _ = self.make_mixer(i)(x_BLD, lengths_B, deterministic=deterministic)
    return x_BLD


def build(stack: MixerStack) -> nn.Module:
  """The backbone ``(x_BLD, lengths_B, *, deterministic) -> y_BLD`` of a resolved model."""
  b = stack.block
  if b.block == "residual":
    return ResidualStack(stack.mixer, b.d_model, b.num_layers, b.d_ff or 4 * b.d_model,
                         b.dropout_rate, b.dtype, b.init)
  first = stack.layers[0][1]
  if hasattr(first, "stacked"):
    return first.stacked(b)
  return StackedLayers(stack.mixer, b.num_layers, b.dropout_rate)


def state_size(stack: MixerStack, length: int) -> int:
  """Floats per sequence the layers' decoding states hold after ``length`` tokens."""
  return sum(stack.mixer(i).state_size(stack.block.d_model, length)
             for i in range(len(stack.layers)))
