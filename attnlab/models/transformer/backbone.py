"""The registered attention models: ``transformer`` (bidirectional encoder), ``decoder`` (causal,
decoder-only), ``swa`` (the decoder with sliding-window self-attention: ``SlidingWindowConfig``,
window 64 by default) and ``encoder_decoder``.

The encoder-decoder reads the inputs with its encoder; its decoder reads the same embedded inputs
shifted right by one (a zero vector first) with causal self-attention and cross-attention to the
encoder, so that its position i predicts target i. Sequence lengths mask the encoder's and the
cross-attention's padded keys and keep padded tokens out of mixture-of-experts routing.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from attnlab.models.transformer import blocks
from attnlab.models.transformer.config import TransformerConfig

KINDS = ("encoder", "decoder", "encoder_decoder")


class TransformerBackbone(nn.Module):
  """x_BLD -> y_BLD through an Encoder, a Decoder or the shifted EncoderDecoder."""
  config: TransformerConfig  # shared hyperparameters
  kind: str  # one of KINDS

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, *, deterministic=True):
    if self.kind == "encoder":
      return blocks.Encoder(self.config, name="encoder")(x_BLD, lengths_B,
                                                          deterministic=deterministic)
    if self.kind == "decoder":
      return blocks.Decoder(self.config, name="decoder")(x_BLD, lengths_B,
                                                          deterministic=deterministic)[0]
    tgt_BLD = jnp.pad(x_BLD, ((0, 0), (1, 0), (0, 0)))[:, :-1]
    return blocks.EncoderDecoder(self.config, name="encdec")(
        x_BLD, tgt_BLD, lengths_B, lengths_B, deterministic=deterministic)

  def state_size(self, d_model: int, length: int) -> int | None:
    """Floats per sequence of the decoding state after ``length`` tokens; None for the encoder and
    the encoder-decoder, whose encoder reads the whole input at once (a new token changes every
    position of its output), so that neither can decode the input token by token."""
    if self.kind != "decoder":
      return None
    return blocks.Decoder(self.config, parent=None).state_size(d_model, length)


def state_size(config: TransformerConfig, length: int, *, kind: str) -> int | None:
  """``TransformerBackbone(config, kind).state_size``, for the registry's entries."""
  return TransformerBackbone(config, kind, parent=None).state_size(config.d_model, length)
