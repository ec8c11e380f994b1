"""Pre-LayerNorm Transformer: Encoder, causal Decoder, EncoderDecoder (cross-attention).

Each block: x + Dropout(Attention(LN(x))), [x + Dropout(CrossAttention(LN(x), context))],
x + Dropout(FFN(LN(x))); a final LayerNorm after the last block. The feed-forward is dense or a
mixture of experts (moe_experts > 0). Inputs are already embedded: x_BLD with D = d_model.

Lengths (``lengths_B``, right padding) mask the padded keys of bidirectional self-attention and of
cross-attention (``context_lengths_B``), and keep padded tokens out of mixture-of-experts routing;
causal self-attention needs no mask for right padding. Outputs at padded positions are unspecified
(the loss ignores them).

``config.window`` > 0 makes the causal self-attention (the Decoder's, the EncoderDecoder's decoder)
a sliding window over the last ``window`` positions, decoding included; the Encoder rejects it
(bidirectional), cross-attention always sees the whole context. ``config.conv_width`` > 0 puts a
short causal convolution (short_conv.py) on each causal self-attention's input; the Encoder rejects
it too.

Decoding: ``Decoder(cfg)(x_BLD, lengths_B, state) -> (y_BLD, state)``. The state (``StackState``)
is each sequence's count of tokens seen (the offset of the additive positions) and one
``BlockState`` per block: the convolution's last inputs, the self-attention's keys and values
(multi_head.KeyValueState), the cross-attention's context keys and values (ContextState). Calling
on x[:, :k] and then on x[:, k:] with the returned state equals one call on x; after a padded call
each sequence continues at its own length::

  dec = Decoder(cfg); v = {"params": params}
  y_BKD, state = dec.apply(v, prompt_BKD, prompt_lengths_B)  # state=None: nothing seen yet
  y_B1D, state = dec.apply(v, x_B1D, None, state)  # then one token (or several) at a time

Note that MoE capacity is computed per call, so with capacity drops decoding step by step can route
differently from the full pass.

EncoderDecoder decoding: the encoder runs once; the first ``decode`` call projects every block's
cross-attention keys/values from the context into the state; later calls read them from there::

  model = EncoderDecoder(cfg)
  context_BSD = model.apply(v, src_BSD, src_lengths_B, method="encode")
  y_B1D, state = model.apply(v, tgt_BLD[:, :1], method="decode", context_BSD=context_BSD,
                             context_lengths_B=src_lengths_B)
  y_B1D, state = model.apply(v, tgt_BLD[:, 1:2], None, state, method="decode")  # and so on

The result equals ``model.apply(v, src_BSD, tgt_BLD, src_lengths_B)`` position by position.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as nn
import jax.numpy as jnp

from attnlab.models import masks
from attnlab.models.attention import multi_head
from attnlab.models.attention import positions as pos_lib
from attnlab.models.transformer import moe
from attnlab.models.transformer import short_conv
from attnlab.models.transformer.config import TransformerConfig
from attnlab.models.transformer.feed_forward import FeedForward


class BlockState(NamedTuple):
  """A causal block's decoding state; None for a part the block does not have."""
  conv: Any  # the short convolution's last conv_width - 1 inputs, [B, conv_width - 1, D] float32
  self_attention: Any  # multi_head.KeyValueState
  cross_attention: Any  # multi_head.ContextState (blocks that read a context)


class StackState(NamedTuple):
  """A causal stack's decoding state."""
  length_B: Any  # int32: tokens seen per sequence, the position of its next token
  blocks: tuple  # one BlockState per block


def _attention(cfg: TransformerConfig, causal: bool, position: str, name: str | None, **kw):
  return multi_head.MultiHeadAttention(
      num_heads=cfg.num_heads, num_kv_heads=cfg.num_kv_heads, causal=causal,
      window=cfg.window if causal and cfg.window else None,
      dropout_rate=cfg.attention_dropout_rate, position=position, rope_base=cfg.rope_base,
      attention_impl=cfg.attention_impl, capture_weights=cfg.capture_attention,
      use_bias=cfg.use_bias, dtype=cfg.dtype, param_dtype=cfg.param_dtype, init_scheme=cfg.init,
      name=name, **kw)


def _feed_forward(cfg: TransformerConfig):
  if cfg.moe_experts:
    return moe.MoEFeedForward(
        num_experts=cfg.moe_experts, d_ff=cfg.d_ff, top_k=cfg.moe_top_k,
        capacity_factor=cfg.moe_capacity_factor, aux_weight=cfg.moe_aux_weight,
        dropout_rate=cfg.dropout_rate, dtype=cfg.dtype, param_dtype=cfg.param_dtype,
        init_scheme=cfg.init, name="moe")
  return FeedForward(cfg.d_ff, cfg.dropout_rate, cfg.dtype, cfg.param_dtype, cfg.init, name="ffn")


def _block_state_size(cfg: TransformerConfig, length: int, context_length: int = 0) -> int:
  """Floats per sequence of a causal block's state after ``length`` tokens (and the keys/values of
  ``context_length`` context tokens). parent=None: the layers are built only to ask their size."""
  size = _attention(cfg, True, cfg.position, None, parent=None).state_size(cfg.d_model, length)
  if cfg.conv_width:
    size += short_conv.ShortConv(cfg.conv_width, parent=None).state_size(cfg.d_model, length)
  # The context's keys and values, as many as a causal attention holds after that many tokens.
  return size + multi_head.MultiHeadAttention(
      cfg.num_heads, cfg.num_kv_heads, causal=True, parent=None).state_size(cfg.d_model,
                                                                            context_length)


class Block(nn.Module):
  """One pre-LN block: self-attention, optional cross-attention, feed-forward."""
  config: TransformerConfig  # shared hyperparameters
  causal: bool = False  # causal self-attention (decoder)

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, state=None, *, deterministic=True, context_BSD=None,
               context_lengths_B=None):
    """-> (y_BLD, BlockState; None for a bidirectional block). Cross-attention when a context is
    given or the state holds one."""
    cfg = self.config
    state = BlockState(None, None, None) if state is None else state
    norm = lambda name: nn.LayerNorm(dtype=cfg.dtype, param_dtype=cfg.param_dtype, name=name)
    drop = lambda h: nn.Dropout(cfg.dropout_rate)(h, deterministic=deterministic)
    h_BLD = norm("ln_self")(x_BLD)
    conv_state = None
    if self.causal and cfg.conv_width:
      h_BLD, conv_state = short_conv.ShortConv(
          cfg.conv_width, cfg.dtype, cfg.param_dtype, name="conv")(h_BLD, lengths_B, state.conv)
    h_BLD, self_state = _attention(cfg, self.causal, cfg.position, "self_attention")(
        h_BLD, lengths_B, state.self_attention, deterministic=deterministic)
    x_BLD = x_BLD + drop(h_BLD)
    cross_state = None
    if context_BSD is not None or state.cross_attention is not None:
      h_BLD, cross_state = _attention(cfg, False, "none", "cross_attention")(
          norm("ln_cross")(x_BLD), state=state.cross_attention, deterministic=deterministic,
          context_BSD=context_BSD, context_lengths_B=context_lengths_B)
      x_BLD = x_BLD + drop(h_BLD)
    h_BLD = _feed_forward(cfg)(norm("ln_ffn")(x_BLD), masks.valid_BL(lengths_B, x_BLD.shape[1]),
                               deterministic=deterministic)
    y_BLD = x_BLD + drop(h_BLD)
    return y_BLD, BlockState(conv_state, self_state, cross_state) if self.causal else None


class _Stack(nn.Module):
  """Input positions and dropout, num_layers blocks, final LayerNorm."""
  config: TransformerConfig  # shared hyperparameters
  causal: bool = False  # causal self-attention

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, state=None, *, deterministic=True, context_BSD=None,
               context_lengths_B=None):
    """-> (y_BLD, StackState; None for a bidirectional stack)."""
    cfg = self.config
    b, l, d = x_BLD.shape
    if d != cfg.d_model:
      raise ValueError(f"input features ({d}) must equal d_model ({cfg.d_model})")
    multi_head.check_lengths("lengths_B", lengths_B, b)
    if state is not None and not (isinstance(state, StackState)
                                  and len(state.blocks) == cfg.num_layers):
      raise ValueError(f"state must be None or the StackState a previous call returned (one "
                       f"BlockState per block, {cfg.num_layers}); got {type(state).__name__}")
    x_BLD = x_BLD.astype(cfg.dtype)
    # Each token's position: its count of valid tokens before it in its own sequence.
    positions_BL = None if state is None else state.length_B[:, None] + jnp.arange(l)[None, :]
    if cfg.position == "sinusoidal":
      pe = pos_lib.sinusoidal(jnp.arange(l), d)[None] if positions_BL is None else (
          pos_lib.sinusoidal(positions_BL, d))
      x_BLD = x_BLD + pe.astype(cfg.dtype)
    elif cfg.position == "learned":
      x_BLD = pos_lib.LearnedPositions(cfg.max_len, cfg.param_dtype, name="positions")(
          x_BLD, positions_BL)
    x_BLD = nn.Dropout(cfg.dropout_rate)(x_BLD, deterministic=deterministic)
    block_states = []
    for i in range(cfg.num_layers):
      x_BLD, block_state = Block(cfg, self.causal, name=f"block_{i}")(
          x_BLD, lengths_B, None if state is None else state.blocks[i],
          deterministic=deterministic, context_BSD=context_BSD,
          context_lengths_B=context_lengths_B)
      block_states.append(block_state)
    y_BLD = nn.LayerNorm(dtype=cfg.dtype, param_dtype=cfg.param_dtype, name="ln_final")(x_BLD)
    if not self.causal:
      return y_BLD, None
    seen_B = jnp.full((b,), l, jnp.int32) if lengths_B is None else lengths_B.astype(jnp.int32)
    length_B = seen_B if state is None else state.length_B + seen_B
    return y_BLD, StackState(length_B, tuple(block_states))


class Encoder(nn.Module):
  """Bidirectional self-attention stack: (x_BLD, lengths_B) -> y_BLD (no decoding state)."""
  config: TransformerConfig  # shared hyperparameters

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, *, deterministic=True):
    if self.config.window:
      raise ValueError(f"window={self.config.window}; the Encoder's self-attention is "
                       "bidirectional and has no sliding window: use window=0")
    if self.config.conv_width:
      raise ValueError(f"conv_width={self.config.conv_width}; the short causal convolution is for "
                       "decoders: use conv_width=0 with the Encoder")
    return _Stack(self.config, causal=False, name="stack")(
        x_BLD, lengths_B, deterministic=deterministic)[0]

  def state_size(self, d_model: int, length: int) -> None:
    del d_model, length
    return None


class Decoder(nn.Module):
  """Causal self-attention stack: (x_BLD, lengths_B, state) -> (y_BLD, state)."""
  config: TransformerConfig  # shared hyperparameters

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, state=None, *, deterministic=True):
    return _Stack(self.config, causal=True, name="stack")(
        x_BLD, lengths_B, state, deterministic=deterministic)

  def state_size(self, d_model: int, length: int) -> int:
    """Floats per sequence of the decoding state after ``length`` tokens."""
    del d_model  # the config's
    return self.config.num_layers * _block_state_size(self.config, length)


class EncoderDecoder(nn.Module):
  """Encoder over the source, causal decoder over the target with cross-attention: -> y_BLD.

  ``encode`` and ``decode`` are the two halves, for decoding with a state (module docstring).
  """
  config: TransformerConfig  # shared hyperparameters

  def setup(self):
    self.encoder = _Stack(self.config, causal=False)
    self.decoder = _Stack(self.config, causal=True)

  def __call__(self, src_BSD, tgt_BLD, src_lengths_B=None, tgt_lengths_B=None, *,
               deterministic=True):
    context_BSD = self.encode(src_BSD, src_lengths_B, deterministic=deterministic)
    return self.decode(tgt_BLD, tgt_lengths_B, deterministic=deterministic,
                       context_BSD=context_BSD, context_lengths_B=src_lengths_B)[0]

  def encode(self, src_BSD, src_lengths_B=None, *, deterministic=True):
    """The encoder's output, context_BSD (what the decoder's cross-attention reads)."""
    return self.encoder(src_BSD, src_lengths_B, deterministic=deterministic)[0]

  def decode(self, tgt_BLD, lengths_B=None, state=None, *, deterministic=True, context_BSD=None,
             context_lengths_B=None):
    """The decoder over the target: -> (y_BLD, StackState). The first call (state=None) needs the
    context; later calls take the returned state and no context."""
    if state is None and context_BSD is None:
      raise ValueError("the first decode call (state=None) needs context_BSD, the encoder's "
                       "output; later calls take the state it returned")
    return self.decoder(tgt_BLD, lengths_B, state, deterministic=deterministic,
                        context_BSD=context_BSD, context_lengths_B=context_lengths_B)

  def state_size(self, d_model: int, length: int, context_length: int | None = None) -> int:
    """Floats per sequence of the decoding state after ``length`` target tokens and a context of
    ``context_length`` (None: ``length``) source tokens."""
    del d_model  # the config's
    context_length = length if context_length is None else context_length
    return self.config.num_layers * _block_state_size(self.config, length, context_length)
