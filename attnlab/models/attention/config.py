"""Causal softmax attention as a mixer of the residual block (``attention`` in a hybrid's layers):
multi-head attention with RoPE positions, optionally a sliding window."""

from __future__ import annotations

import dataclasses

import flax.linen as nn

from attnlab.models.attention import dot_product, positions
from attnlab.models.attention.multi_head import MultiHeadAttention


@dataclasses.dataclass(frozen=True)
class AttentionConfig:
  """Causal multi-head attention; checked on creation (and against the width when resolved)."""
  num_heads: int = 4  # query heads N (must divide d_model)
  window: int = 0  # sliding window: each position sees the last ``window`` (0: all before it)
  position: str = "rope"  # "rope", "alibi" or "none": the residual block adds no positions
  attention_impl: str = ""  # dot_product.IMPLEMENTATIONS name; "": the backend's default

  module_name = "attention"

  def __post_init__(self):
    if isinstance(self.num_heads, bool) or not isinstance(self.num_heads, int) or self.num_heads < 1:
      raise ValueError(f"num_heads={self.num_heads!r}; must be an int >= 1")
    if self.window < 0:
      raise ValueError(f"window={self.window}; must be >= 0 (0 = full attention)")
    if self.position not in ("rope", "alibi", "none"):
      raise ValueError(f"position={self.position!r}; allowed: ('rope', 'alibi', 'none')")
    positions.check_position(self.position)
    if self.attention_impl and self.attention_impl not in dot_product.IMPLEMENTATIONS:
      raise ValueError(f"attention_impl={self.attention_impl!r}; allowed: "
                       f"{tuple(dot_product.IMPLEMENTATIONS)} or '' for the default")

  def resolved(self, d_model: int) -> "AttentionConfig":
    if d_model % self.num_heads:
      raise ValueError(f"num_heads={self.num_heads}; must divide d_model={d_model}")
    if self.position == "rope" and (d_model // self.num_heads) % 2:
      raise ValueError(f"position='rope' needs an even head dim; d_model={d_model} / "
                       f"num_heads={self.num_heads} = {d_model // self.num_heads}")
    return self

  def module(self, d_model: int, *, dtype, init, name) -> nn.Module:
    del d_model  # the projections' width is the input's
    return MultiHeadAttention(num_heads=self.num_heads, causal=True, window=self.window or None,
                              position=self.position, attention_impl=self.attention_impl or None,
                              dtype=dtype, init_scheme=init, name=name)
