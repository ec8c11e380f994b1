"""The Transformer's hyperparameters, shared by Encoder, Decoder and EncoderDecoder."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp

from attnlab.models import initializers
from attnlab.models.attention import multi_head
from attnlab.models.attention import positions as pos_lib


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
  """Hyperparameters shared by Encoder, Decoder and EncoderDecoder; checked on creation."""
  num_layers: int = 2  # blocks per stack
  d_model: int = 64  # residual width D (must equal the input features)
  num_heads: int = 4  # query heads N
  num_kv_heads: int | None = None  # key/value heads G (None or 0: N; 1: multi-query)
  d_ff: int = 0  # feed-forward hidden size (per expert for MoE); 0: 4 * d_model
  dropout_rate: float = 0.0  # residual, input and feed-forward dropout
  attention_dropout_rate: float = 0.0  # dropout on attention weights
  position: str = "sinusoidal"  # one of positions.POSITIONS
  max_len: int = 2048  # size of the learned position table
  moe_experts: int = 0  # 0: dense feed-forward
  moe_top_k: int = 1  # experts per token
  moe_capacity_factor: float = 1.25  # expert capacity relative to an even split
  moe_aux_weight: float = 0.01  # weight of the load-balancing loss sown into "losses"
  attention_impl: str | None = None  # dot_product.IMPLEMENTATIONS name; None or "": the default
  capture_attention: bool = False  # sow attention weights into "intermediates"
  dtype: Any = jnp.float32  # compute dtype (e.g. jnp.bfloat16)
  param_dtype: Any = jnp.float32  # parameter dtype
  rope_base: float = 10000.0  # RoPE wavelength base
  use_bias: bool = True  # biases in the attention projections
  # Sliding window of the causal self-attention (decoders): each position sees the last `window`
  # positions, its own included; 0: full attention. Encoders and cross-attention always see all.
  window: int = 0
  # Decoders: a causal depthwise convolution of this many taps on the self-attention's input
  # (short_conv.py; H3/Zoology's short convolution); 0: none. Encoders reject it.
  conv_width: int = 0
  init: str = initializers.DEFAULT  # initializers.SCHEMES: embedding and dense projections

  # The placeholders (a config file's 0, None or ""), read through these properties, so that
  # dataclasses.replace(config, d_model=...) derives them again.
  @property
  def ff_width(self) -> int:
    """The feed-forward hidden size: d_ff, or 4 * d_model for 0."""
    return self.d_ff or 4 * self.d_model

  @property
  def kv_heads(self) -> int:
    """Key/value heads G: num_kv_heads, or num_heads for None or 0."""
    return self.num_kv_heads or self.num_heads

  @property
  def kernel(self) -> str | None:
    """The attention implementation; None (the backend's default) for None or ""."""
    return self.attention_impl or None

  def resolved_fields(self) -> dict[str, Any]:
    """The fields with the placeholders filled in, as a run's summary shows them."""
    return {**dataclasses.asdict(self), "d_ff": self.ff_width, "num_kv_heads": self.kv_heads,
            "attention_impl": self.kernel}

  def __post_init__(self):
    if self.conv_width < 0 or self.conv_width == 1:
      raise ValueError(f"conv_width={self.conv_width}; allowed: 0 (no convolution) or >= 2 taps")
    if self.window < 0:
      raise ValueError(f"window={self.window}; must be >= 0 (0 = full attention)")
    for name in ("num_layers", "d_model", "num_heads"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name}={getattr(self, name)}; must be >= 1")
    if self.d_ff < 0:
      raise ValueError(f"d_ff={self.d_ff}; must be >= 0 (0 = 4 * d_model)")
    multi_head.check_heads(self.d_model, self.num_heads, self.kv_heads)
    initializers.check(self.init)
    multi_head.check_implementation(self.kernel)
    pos_lib.check_position(self.position)
    if self.position == "rope" and (self.d_model // self.num_heads) % 2:
      raise ValueError(f"position='rope' needs an even head dim; d_model={self.d_model} / "
                       f"num_heads={self.num_heads} = {self.d_model // self.num_heads}")
    if self.position == "learned" and self.max_len < 1:
      raise ValueError(f"max_len={self.max_len}; must be >= 1 for learned positions")
    for name in ("dropout_rate", "attention_dropout_rate"):
      if not 0.0 <= getattr(self, name) < 1.0:
        raise ValueError(f"{name}={getattr(self, name)}; must be in [0, 1)")
    if self.moe_experts < 0:
      raise ValueError(f"moe_experts={self.moe_experts}; must be >= 0 (0 = dense)")
    if self.moe_experts and not 1 <= self.moe_top_k <= self.moe_experts:
      raise ValueError(f"moe_top_k={self.moe_top_k}; must be in [1, moe_experts="
                       f"{self.moe_experts}]")
    if self.moe_experts and self.moe_capacity_factor <= 0:
      raise ValueError(f"moe_capacity_factor={self.moe_capacity_factor}; must be > 0")


@dataclasses.dataclass(frozen=True)
class SlidingWindowConfig(TransformerConfig):
  """The ``swa`` model's config: a TransformerConfig whose default is a 64-position window."""
  window: int = 64  # each position sees the last 64 (so sequences up to 64 see everything)
