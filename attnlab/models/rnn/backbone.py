"""The registered recurrent models (rnn, rnn_relu, lstm, gru): stacked ``RNN`` layers of width
d_model, the top layer's outputs returned."""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from attnlab.models import initializers
from attnlab.models.rnn import cells
from attnlab.models.rnn.layer import RNN


@dataclasses.dataclass(frozen=True)
class RecurrentConfig:
  """A stack of classic recurrent layers; checked on creation."""
  cell: str = "lstm"  # a cells.CELLS key (fixed by the registered name)
  d_model: int = 64  # hidden size (= the embedding size)
  num_layers: int = 2  # stacked layers
  dropout_rate: float = 0.0  # between layers
  # LSTM: the forget gate's total bias at init; 0 keeps PyTorch's init (uniform biases). 1 is
  # Jozefowicz et al. (2015)'s recommendation.
  forget_bias: float = 0.0
  # initializers.SCHEMES: the embedding and head (the cells draw U(+-1/sqrt(H)) under both)
  init: str = initializers.DEFAULT
  dtype: Any = jnp.float32  # compute dtype (set by the run's compute_dtype)

  def __post_init__(self):
    cells.resolve(self.cell)
    for name in ("d_model", "num_layers"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name}={getattr(self, name)}; must be >= 1")
    if not 0.0 <= self.dropout_rate < 1.0:
      raise ValueError(f"dropout_rate={self.dropout_rate}; must be in [0, 1)")
    if self.forget_bias and self.cell != "lstm":
      raise ValueError(f"forget_bias={self.forget_bias} is for the LSTM only (cell {self.cell!r})")
    initializers.check(self.init)


class RecurrentBackbone(nn.Module):
  """x_BLD -> y_BLD: the top layer's outputs (zero past each sequence's length)."""
  config: RecurrentConfig  # the stack's hyperparameters

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, *, deterministic=True):
    cfg = self.config
    y_BLD, _ = RNN(cell=cfg.cell, hidden_size=cfg.d_model, num_layers=cfg.num_layers,
                   dropout_rate=cfg.dropout_rate, dtype=cfg.dtype,
                   forget_bias=cfg.forget_bias or None, name="rnn")(
                       x_BLD, lengths_B, deterministic=deterministic)
    return y_BLD
