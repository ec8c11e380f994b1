"""The residual stack every sequence-mixing layer outside the Transformer is trained in.

  x = x + Dropout(mixer_i(LayerNorm(x), lengths)),  x = x + Dropout(MLP(LayerNorm(x)))

for each of ``num_layers`` blocks (pre-norm, gelu MLP of width d_ff), then a final LayerNorm. A
mixer is any module ``(x_BLD, lengths_B) -> y_BLD`` (or ``(y_BLD, state)``, the scan layers'
return, whose state is dropped): the parallel-scan recurrences and the sub-quadratic families.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp

from attnlab.models import initializers


def check_sizes(**sizes) -> None:
  """ValueError naming the first size field that is not an int >= 1."""
  for name, value in sizes.items():
    if not isinstance(value, int) or value < 1:
      raise ValueError(f"{name}={value!r}; must be an int >= 1")


def check_rate(name: str, value: float) -> None:
  if not 0.0 <= value < 1.0:
    raise ValueError(f"{name}={value}; must be in [0, 1)")


def check_stack_fields(cfg) -> None:
  """A family config's stack fields, on creation: d_ff 0 becomes 4 * d_model; ValueError naming
  the first bad one of d_model, num_layers, d_ff, dropout_rate and init."""
  check_sizes(d_model=cfg.d_model, num_layers=cfg.num_layers)
  if not cfg.d_ff:
    object.__setattr__(cfg, "d_ff", 4 * cfg.d_model)
  check_sizes(d_ff=cfg.d_ff)
  check_rate("dropout_rate", cfg.dropout_rate)
  initializers.check(cfg.init)


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
      h_BLD = self.make_mixer(i)(h_BLD, lengths_B)
      if isinstance(h_BLD, tuple):  # a scan layer's (y, final state)
        h_BLD = h_BLD[0]
      x_BLD = x_BLD + drop(h_BLD)
      h_BLD = nn.LayerNorm(dtype=self.dtype, name=f"norm_mlp_{i}")(x_BLD)
      h_BLF = nn.gelu(nn.Dense(self.d_ff, dtype=self.dtype, name=f"mlp_in_{i}",
                               **initializers.linear(self.init_scheme, self.d_model))(h_BLD))
      x_BLD = x_BLD + drop(nn.Dense(self.d_model, dtype=self.dtype, name=f"mlp_out_{i}",
                                    **initializers.linear(self.init_scheme, self.d_ff))(h_BLF))
    return nn.LayerNorm(dtype=self.dtype, name="norm_final")(x_BLD)


def from_config(cfg) -> ResidualStack:
  """The residual stack of a family config: anything with ``mixer(i)`` (the i-th block's mixer,
  named) and the fields d_model, num_layers, d_ff, dropout_rate, dtype and init."""
  return ResidualStack(cfg.mixer, cfg.d_model, cfg.num_layers, cfg.d_ff, cfg.dropout_rate,
                       cfg.dtype, cfg.init)
