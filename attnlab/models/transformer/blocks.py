"""Pre-LayerNorm Transformer: Encoder, causal Decoder (with a decode cache), EncoderDecoder.

Each block: x + Dropout(Attention(LN(x))), [x + Dropout(CrossAttention(LN(x), memory))],
x + Dropout(FFN(LN(x))); a final LayerNorm after the last block. The feed-forward is dense or a
mixture of experts (moe_experts > 0). Inputs are already embedded: x_BLD with D = d_model.

Padding masks (mask_BL, True = real token) hide padded keys; padded queries still compute (their
outputs are ignored by the loss) so that no row of the softmax is empty.

``config.window`` > 0 makes the causal self-attention (the Decoder's, the EncoderDecoder's decoder)
a sliding window over the last ``window`` positions, cached decoding included; the Encoder rejects
it (bidirectional), cross-attention always sees the whole memory. ``config.conv_width`` > 0 puts a
short causal convolution (short_conv.py) on each causal self-attention's input, its last inputs
carried in the cache when decoding; the Encoder rejects it too.

Decoding: ``variables = Decoder(cfg).init(rng, x_full_BLD, decode=True)`` sizes the cache to that
length; then ``Decoder(cfg).apply({"params": p, "cache": c}, x_B1D, decode=True,
mutable=["cache"])`` one step at a time (several tokens per call also work). Note that MoE capacity
is computed per call, so with capacity drops decoding step by step can route differently from the
full pass.

EncoderDecoder decoding: the encoder runs once, the cross-attention keys/values are computed once
from its memory, then the decoder runs one target token at a time::

  model = EncoderDecoder(cfg); v = {"params": params}
  memory_BSD = model.apply(v, src_BSD, src_mask_BS, method="encode")
  # Sizes the self-attention caches to L and caches every block's cross-attention keys/values
  # (an apply with the trained params: the cached keys depend on them).
  _, c = model.apply(v, jnp.zeros((B, L, D)), memory_BSD, src_mask_BS, decode=True,
                     method="decode", mutable=["cache"])
  y_B1D, c = model.apply({**v, **c}, tgt_B1D, memory_BSD, src_mask_BS, decode=True,
                         method="decode", mutable=["cache"])  # and so on, token by token

The steps read the cached keys/values and never project ``memory_BSD`` again (it is passed for its
shape only); ``src_mask_BS`` is not cached: pass it on every step. The result equals
``model.apply(v, src_BSD, tgt_BLD, src_mask_BS)`` position by position.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from attnlab.models.attention import multi_head
from attnlab.models.transformer import moe
from attnlab.models.transformer import short_conv
from attnlab.models.transformer.config import TransformerConfig
from attnlab.models.transformer.feed_forward import FeedForward
from attnlab.models.attention import positions as pos_lib


def _attention(cfg: TransformerConfig, causal: bool, position: str, name: str):
  return multi_head.MultiHeadAttention(
      num_heads=cfg.num_heads, num_kv_heads=cfg.num_kv_heads, causal=causal,
      window=cfg.window if causal and cfg.window else None,
      dropout_rate=cfg.attention_dropout_rate, position=position, rope_base=cfg.rope_base,
      implementation=cfg.attention_impl, capture_weights=cfg.capture_attention,
      use_bias=cfg.use_bias, dtype=cfg.dtype, param_dtype=cfg.param_dtype, init_scheme=cfg.init,
      name=name)


def _feed_forward(cfg: TransformerConfig):
  if cfg.moe_experts:
    return moe.MoEFeedForward(
        num_experts=cfg.moe_experts, d_ff=cfg.d_ff, top_k=cfg.moe_top_k,
        capacity_factor=cfg.moe_capacity_factor, aux_weight=cfg.moe_aux_weight,
        dropout_rate=cfg.dropout_rate, dtype=cfg.dtype, param_dtype=cfg.param_dtype,
        init_scheme=cfg.init, name="moe")
  return FeedForward(cfg.d_ff, cfg.dropout_rate, cfg.dtype, cfg.param_dtype, cfg.init, name="ffn")


def _key_mask(mask_BS):
  return None if mask_BS is None else mask_BS[:, None, None, :].astype(bool)


class Block(nn.Module):
  """One pre-LN block: self-attention, optional cross-attention, feed-forward."""
  config: TransformerConfig  # shared hyperparameters
  causal: bool = False  # causal self-attention (decoder)

  @nn.compact
  def __call__(self, x_BLD, mask_BL=None, memory_BSD=None, memory_mask_BS=None, *,
               deterministic=True, decode=False):
    cfg = self.config
    norm = lambda name: nn.LayerNorm(dtype=cfg.dtype, param_dtype=cfg.param_dtype, name=name)
    drop = lambda h: nn.Dropout(cfg.dropout_rate)(h, deterministic=deterministic)
    h_BLD = norm("ln_self")(x_BLD)
    if self.causal and cfg.conv_width:
      h_BLD = short_conv.ShortConv(cfg.conv_width, cfg.dtype, cfg.param_dtype, name="conv")(
          h_BLD, decode=decode)
    h_BLD = _attention(cfg, self.causal, cfg.position, "self_attention")(
        h_BLD, mask=_key_mask(mask_BL), deterministic=deterministic,
        decode=decode)
    x_BLD = x_BLD + drop(h_BLD)
    if memory_BSD is not None:
      h_BLD = _attention(cfg, False, "none", "cross_attention")(
          norm("ln_cross")(x_BLD), memory_BSD, mask=_key_mask(memory_mask_BS),
          deterministic=deterministic, decode=decode)
      x_BLD = x_BLD + drop(h_BLD)
    h_BLD = _feed_forward(cfg)(norm("ln_ffn")(x_BLD), mask_BL, deterministic=deterministic)
    return x_BLD + drop(h_BLD)


class _Stack(nn.Module):
  """Input positions and dropout, num_layers blocks, final LayerNorm."""
  config: TransformerConfig  # shared hyperparameters
  causal: bool = False  # causal self-attention

  @nn.compact
  def __call__(self, x_BLD, mask_BL=None, memory_BSD=None, memory_mask_BS=None, *,
               deterministic=True, decode=False):
    cfg = self.config
    b, l, d = x_BLD.shape
    if d != cfg.d_model:
      raise ValueError(f"input features ({d}) must equal d_model ({cfg.d_model})")
    _check_mask("mask_BL", mask_BL, (b, l))
    if memory_BSD is not None:
      _check_mask("memory mask", memory_mask_BS, memory_BSD.shape[:2])
    if decode and mask_BL is not None:
      raise ValueError("mask_BL is not supported with decode=True: decode right-padded sequences "
                       "without a mask (causality already hides the padding that follows)")
    x_BLD = x_BLD.astype(cfg.dtype)
    offset = 0
    if decode:
      # Absolute position of this call's first token, for the additive position encodings.
      initialized = self.has_variable("cache", "position_index")
      index = self.variable("cache", "position_index", lambda: jnp.array(0, jnp.int32))
      if initialized:
        offset = index.value
        index.value = offset + l
    if cfg.position == "sinusoidal":
      x_BLD = x_BLD + pos_lib.sinusoidal(offset + jnp.arange(l), d)[None].astype(cfg.dtype)
    elif cfg.position == "learned":
      x_BLD = pos_lib.LearnedPositions(cfg.max_len, cfg.param_dtype, name="positions")(
          x_BLD, offset)
    x_BLD = nn.Dropout(cfg.dropout_rate)(x_BLD, deterministic=deterministic)
    for i in range(cfg.num_layers):
      x_BLD = Block(cfg, self.causal, name=f"block_{i}")(
          x_BLD, mask_BL, memory_BSD, memory_mask_BS, deterministic=deterministic, decode=decode)
    return nn.LayerNorm(dtype=cfg.dtype, param_dtype=cfg.param_dtype, name="ln_final")(x_BLD)


def _check_mask(name, mask, shape):
  if mask is not None and tuple(mask.shape) != tuple(shape):
    raise ValueError(f"{name} must have shape {tuple(shape)} (batch, length); "
                     f"got {tuple(mask.shape)}")


class Encoder(nn.Module):
  """Bidirectional self-attention stack: x_BLD -> y_BLD."""
  config: TransformerConfig  # shared hyperparameters

  @nn.compact
  def __call__(self, x_BLD, mask_BL=None, *, deterministic=True):
    if self.config.window:
      raise ValueError(f"window={self.config.window}; the Encoder's self-attention is "
                       "bidirectional and has no sliding window: use window=0")
    if self.config.conv_width:
      raise ValueError(f"conv_width={self.config.conv_width}; the short causal convolution is for "
                       "decoders: use conv_width=0 with the Encoder")
    return _Stack(self.config, causal=False, name="stack")(
        x_BLD, mask_BL, deterministic=deterministic)


class Decoder(nn.Module):
  """Causal self-attention stack: x_BLD -> y_BLD; decode=True uses the "cache" collection."""
  config: TransformerConfig  # shared hyperparameters

  @nn.compact
  def __call__(self, x_BLD, mask_BL=None, *, deterministic=True, decode=False):
    return _Stack(self.config, causal=True, name="stack")(
        x_BLD, mask_BL, deterministic=deterministic, decode=decode)


class EncoderDecoder(nn.Module):
  """Encoder over the source, causal decoder over the target with cross-attention: -> y_BLD.

  ``encode`` and ``decode`` are the two halves, for cached decoding (module docstring).
  """
  config: TransformerConfig  # shared hyperparameters

  def setup(self):
    self.encoder = _Stack(self.config, causal=False)
    self.decoder = _Stack(self.config, causal=True)

  def __call__(self, src_BSD, tgt_BLD, src_mask_BS=None, tgt_mask_BL=None, *,
               deterministic=True):
    memory_BSD = self.encode(src_BSD, src_mask_BS, deterministic=deterministic)
    return self.decode(tgt_BLD, memory_BSD, src_mask_BS, tgt_mask_BL, deterministic=deterministic)

  def encode(self, src_BSD, src_mask_BS=None, *, deterministic=True):
    """The encoder's memory_BSD."""
    return self.encoder(src_BSD, src_mask_BS, deterministic=deterministic)

  def decode(self, tgt_BLD, memory_BSD, src_mask_BS=None, tgt_mask_BL=None, *,
             deterministic=True, decode=False):
    """The decoder over the target, attending to memory_BSD; decode=True uses the "cache"."""
    return self.decoder(tgt_BLD, tgt_mask_BL, memory_BSD, src_mask_BS,
                        deterministic=deterministic, decode=decode)
