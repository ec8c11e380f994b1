"""The short causal convolution before a decoder's self-attention (H3's shift, Zoology's hybrids).

  h' = h + conv(h),   conv(h)_t = sum_{k=0..W-1} kernel_k * h_{t - W + 1 + k}   (per channel)

Attention alone must learn a previous-token head before it can bind a key to the value after it
(associative recall's slow "induction" phase); a width-W depthwise convolution hands every position
its W - 1 predecessors directly. Causal (an output never reads a later input) and, decoding, it
carries the last W - 1 inputs in the "cache" collection (``conv_state``); the arithmetic is
mamba/causal_conv.py's. The kernel starts as PyTorch's Conv1d does (uniform, bound W^-1/2).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from attnlab.models.mamba import causal_conv


class ShortConv(nn.Module):
  """h_BLD -> h_BLD + conv(h_BLD) (in ``dtype``); decode=True carries the conv state."""
  width: int  # W: taps, the current input included (>= 2)
  dtype: Any = jnp.float32  # output dtype
  param_dtype: Any = jnp.float32  # dtype of the kernel

  @nn.compact
  def __call__(self, h_BLD, *, decode=False):
    b, _, d = h_BLD.shape
    bound = self.width ** -0.5
    kernel_WD = self.param(
        "kernel", lambda key, shape, dtype: nn.initializers.uniform(2 * bound)(key, shape, dtype)
        - bound, (self.width, d), self.param_dtype)
    bias_D = jnp.zeros((d,), jnp.float32)
    state_BZD = None
    if decode:
      # The first decode call (init) only creates the state; later calls read and advance it.
      initialized = self.has_variable("cache", "conv_state")
      state = self.variable("cache", "conv_state", causal_conv.zero_state, b, self.width, d)
      if initialized:
        state_BZD = state.value
        state.value = causal_conv.next_state(h_BLD, state_BZD, None, self.width)
    y_BLD = causal_conv.causal_conv(h_BLD, kernel_WD, bias_D, state_BZD)
    return (h_BLD.astype(jnp.float32) + y_BLD).astype(self.dtype)
