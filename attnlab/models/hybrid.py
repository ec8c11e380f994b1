"""Hybrids: a residual stack whose blocks hold different mixers, one per block, by name.

``model=hybrid`` with ``layers="hawk,hawk,attention"`` is Griffin's pattern (two recurrent blocks
to one attention block; De et al. 2024), ``layers="gru,attention"`` a GRU under attention. The
names are the registered mixer names (registry.MODELS with no blocks of their own) and
``attention``, causal softmax attention with RoPE (attention/config.py). Each mixer takes its own
defaults, with the hybrid's ``num_heads`` for every mixer that has heads and its ``window`` for
attention; ``num_layers`` is the list's length. ``registry.hybrid_layers`` builds the list.
"""

from __future__ import annotations

import dataclasses

from attnlab.models import checks


@dataclasses.dataclass(frozen=True)
class HybridConfig:
  """A hybrid's own fields; the names are checked against the registry when the model is built."""
  layers: str = "hawk,hawk,attention"  # one mixer name per residual block, comma-separated
  num_heads: int = 4  # heads of every mixer that has heads (must divide d_model)
  window: int = 0  # attention's sliding window (0: full causal attention)
  impl: str = "fast"  # every mixer's form: "fast" or "reference" (attention: its default kernel)

  def __post_init__(self):
    if not isinstance(self.layers, str) or not self.names:
      raise ValueError(f"layers={self.layers!r}; must list mixer names, e.g. 'hawk,hawk,attention'")
    checks.check_impl(self.impl)

  @property
  def names(self) -> tuple[str, ...]:
    return tuple(n.strip() for n in self.layers.split(",") if n.strip())
