"""Pre-LayerNorm Transformers and the mixture-of-experts feed-forward.

  config.py        TransformerConfig (every size and option, checked on creation)
  blocks.py        Block, Encoder, Decoder, EncoderDecoder (cross-attention); decoding with an
                   explicit state (StackState: the blocks' keys/values and convolution inputs)
  feed_forward.py  the dense feed-forward; moe.py: top-k routing with capacity (Switch/GShard)
  short_conv.py    the short causal convolution before a decoder's attention (conv_width)
  backbone.py      the registered transformer, decoder and encoder_decoder models

tests/models/transformer/ checks decoding against the full pass, causality through gradients,
padding masks, the MoE routing and losses and the short convolution against hand computations.
"""
