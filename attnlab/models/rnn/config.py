"""The classic cells as mixers (rnn, rnn_relu, lstm, gru): one ``RNN`` layer of width d_model per
block, or, stacked, PyTorch's multi-layer module (one ``RNN`` named ``rnn``, PyTorch's names)."""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn

from attnlab.models import checks
from attnlab.models.rnn import cells
from attnlab.models.rnn.layer import RNN


@dataclasses.dataclass(frozen=True)
class RecurrentConfig:
  """A classic cell's own fields; checked on creation."""
  cell: str = "lstm"  # a cells.CELLS key (fixed by the registered name)
  # LSTM: the forget gate's total bias at init; 0 keeps PyTorch's init (uniform biases). 1 is
  # Jozefowicz et al. (2015)'s recommendation.
  forget_bias: float = 0.0
  impl: str = "fast"  # "fast": the hand-written backward passes (kernel.py); "reference": autodiff

  module_name = "rnn"  # parameter-name prefix of each layer's mixer

  def __post_init__(self):
    cells.resolve(self.cell)
    if self.forget_bias and self.cell != "lstm":
      raise ValueError(f"forget_bias={self.forget_bias} is for the LSTM only (cell {self.cell!r})")
    checks.check_impl(self.impl)

  def module(self, d_model: int, *, dtype, init, name) -> nn.Module:
    # The cells draw PyTorch's U(+-1/sqrt(H)) under every init scheme.
    del init
    return RNN(cell=self.cell, hidden_size=d_model, forget_bias=self.forget_bias or None,
               impl=self.impl, dtype=dtype, name=name)

  def stacked(self, block) -> nn.Module:
    return RecurrentStack(self, block)


class RecurrentStack(nn.Module):
  """The stacked block of a classic cell: x_BLD -> the top layer's y_BLD (zero past each length)."""
  config: RecurrentConfig  # the cell's fields
  block: Any  # blocks.BlockConfig: width, layers, dropout between layers, dtype

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, *, deterministic=True):
    cfg, b = self.config, self.block
    y_BLD, _ = RNN(cell=cfg.cell, hidden_size=b.d_model, num_layers=b.num_layers,
                   dropout_rate=b.dropout_rate, dtype=b.dtype, forget_bias=cfg.forget_bias or None,
                   impl=cfg.impl, name="rnn")(x_BLD, lengths_B, deterministic=deterministic)
    return y_BLD
