"""The registered attention models: ``transformer`` (bidirectional encoder), ``decoder`` (causal,
decoder-only), ``swa`` (the decoder with sliding-window self-attention: ``SlidingWindowConfig``,
window 64 by default) and ``encoder_decoder``.

The encoder-decoder reads the inputs with its encoder; its decoder reads the same embedded inputs
shifted right by one (a zero vector first) with causal self-attention and cross-attention to the
encoder, so that its position i predicts target i. Sequence lengths become key padding masks for
the encoder and for cross-attention; the causal decoders need none for right padding, except for
mixture-of-experts routing.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from attnlab.models import masks
from attnlab.models.transformer import blocks
from attnlab.models.transformer.config import TransformerConfig

KINDS = ("encoder", "decoder", "encoder_decoder")


class TransformerBackbone(nn.Module):
  """x_BLD -> y_BLD through an Encoder, a Decoder or the shifted EncoderDecoder."""
  config: TransformerConfig  # shared hyperparameters
  kind: str  # one of KINDS

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, *, deterministic=True):
    mask_BL = masks.valid_BL(lengths_B, x_BLD.shape[1])
    if self.kind == "encoder":
      return blocks.Encoder(self.config, name="encoder")(x_BLD, mask_BL,
                                                          deterministic=deterministic)
    # Causal self-attention needs no mask for right padding; mixture-of-experts routing does (a
    # padded token must take no expert capacity), so MoE decoders get the token mask.
    tgt_mask_BL = mask_BL if self.config.moe_experts else None
    if self.kind == "decoder":
      return blocks.Decoder(self.config, name="decoder")(x_BLD, tgt_mask_BL,
                                                          deterministic=deterministic)
    tgt_BLD = jnp.pad(x_BLD, ((0, 0), (1, 0), (0, 0)))[:, :-1]
    return blocks.EncoderDecoder(self.config, name="encdec")(
        x_BLD, tgt_BLD, mask_BL, tgt_mask_BL, deterministic=deterministic)


def state_size(config: TransformerConfig, length: int, *, kind: str) -> int | None:
  """Floats per sequence a decoder's state holds after ``length`` tokens: per block its keys and
  values (the last ``window`` with a sliding window), the short convolution's last inputs, and the
  encoder-decoder's cross-attention keys and values of a source as long; None for the encoder."""
  if kind == "encoder":
    return None
  kv = config.num_kv_heads * (config.d_model // config.num_heads)
  seen = min(length, config.window) if config.window else length
  per_block = 2 * seen * kv + (config.conv_width - 1) * config.d_model * (config.conv_width > 0)
  if kind == "encoder_decoder":
    per_block += 2 * length * kv
  return config.num_layers * per_block
