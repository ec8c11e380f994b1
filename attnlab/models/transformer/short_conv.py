"""The short causal convolution before a decoder's self-attention (H3's shift, Zoology's hybrids).

  h' = h + conv(h),   conv(h)_t = sum_{k=0..W-1} kernel_k * h_{t - W + 1 + k}   (per channel)

Attention alone must learn a previous-token head before it can bind a key to the value after it
(associative recall's slow "induction" phase); a width-W depthwise convolution hands every position
its W - 1 predecessors directly. Causal (an output never reads a later input); its decoding state is
the last W - 1 inputs of each sequence (``state_BZD``, Z = W - 1, float32), the arithmetic
mamba/causal_conv.py's. The kernel starts as PyTorch's Conv1d does (uniform, bound W^-1/2).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from attnlab.models.mamba import causal_conv


class ShortConv(nn.Module):
  """(h_BLD, lengths_B, state_BZD) -> (h_BLD + conv(h_BLD) in ``dtype``, state_BZD)."""
  width: int  # W: taps, the current input included (>= 2)
  dtype: Any = jnp.float32  # output dtype
  param_dtype: Any = jnp.float32  # dtype of the kernel

  @nn.compact
  def __call__(self, h_BLD, lengths_B=None, state=None):
    """state: None (zeros before the first input) or the state_BZD a previous call returned."""
    b, _, d = h_BLD.shape
    if state is not None and tuple(state.shape) != (b, self.width - 1, d):
      raise ValueError(f"ShortConv state must have shape {(b, self.width - 1, d)} (batch, "
                       f"width - 1, features); got {tuple(state.shape)}")
    bound = self.width ** -0.5
    kernel_WD = self.param(
        "kernel", lambda key, shape, dtype: nn.initializers.uniform(2 * bound)(key, shape, dtype)
        - bound, (self.width, d), self.param_dtype)
    bias_D = jnp.zeros((d,), jnp.float32)
    y_BLD = causal_conv.causal_conv(h_BLD, kernel_WD, bias_D, state)
    next_BZD = causal_conv.next_state(h_BLD, state, lengths_B, self.width)
    return (h_BLD.astype(jnp.float32) + y_BLD).astype(self.dtype), next_BZD

  def state_size(self, d_model: int, length: int) -> int:
    """Floats per sequence of the decoding state: the last W - 1 inputs (zeros before the first)."""
    del length
    return (self.width - 1) * d_model
