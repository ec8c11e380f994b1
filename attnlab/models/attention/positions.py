"""Position information for attention: none, sinusoidal, learned, rotary (RoPE) and ALiBi.

Two kinds. Additive positions (sinusoidal, learned) are added to the embedded inputs once, before
the first block. Relative positions act inside every self-attention layer: RoPE rotates queries and
keys, ALiBi adds a distance penalty to the logits. Every function takes absolute positions, so a
decoder with a key/value cache passes ``offset + arange(L)`` and gets exactly what the full pass
computes.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

POSITIONS = ("none", "sinusoidal", "learned", "rope", "alibi")
ADDITIVE = ("sinusoidal", "learned")  # added to the inputs
RELATIVE = ("rope", "alibi")  # applied inside self-attention


def check_position(name: str) -> None:
  if name not in POSITIONS:
    raise ValueError(f"unknown position {name!r}; allowed: {POSITIONS}")


def sinusoidal(positions_L, d_model: int, max_timescale: float = 10000.0):
  """Vaswani et al. (2017): PE[p, 2i] = sin(p / 10000^(2i/D)), PE[p, 2i+1] = cos(same). -> pe_LD."""
  half = (d_model + 1) // 2
  inv_freq = max_timescale ** (-2.0 * jnp.arange(half, dtype=jnp.float32) / d_model)
  angle_LH = positions_L.astype(jnp.float32)[:, None] * inv_freq[None, :]
  # Interleave sin (even features) and cos (odd features); drop the extra cos for odd D.
  pe_LH2 = jnp.stack([jnp.sin(angle_LH), jnp.cos(angle_LH)], axis=-1)
  return pe_LH2.reshape(positions_L.shape[0], 2 * half)[:, :d_model]


class LearnedPositions(nn.Module):
  """A trained table of ``max_len`` position vectors added to the inputs."""
  max_len: int  # table size: the longest sequence this model can take
  param_dtype: Any = jnp.float32  # storage dtype of the table

  @nn.compact
  def __call__(self, x_BLD, offset=0):
    """Adds rows offset .. offset+L-1 of the table (offset may be traced, e.g. a cache index)."""
    length, d = x_BLD.shape[1], x_BLD.shape[2]
    if length > self.max_len:
      raise ValueError(f"sequence length {length} is longer than the learned position table "
                       f"(max_len={self.max_len}); raise max_len or use another position")
    table_PD = self.param("embedding", nn.initializers.normal(stddev=0.02),
                          (self.max_len, d), self.param_dtype)
    pe_LD = jax.lax.dynamic_slice_in_dim(table_PD, offset, length, axis=0)
    return x_BLD + pe_LD[None].astype(x_BLD.dtype)


def rope(x_BLNK, positions_L, base: float = 10000.0):
  """Rotary embedding (Su et al. 2021): rotates feature pairs (2i, 2i+1) by angle p * base^(-2i/K).

  Applied to queries and keys, q_m . k_n then depends on m - n only.
  """
  kd = x_BLNK.shape[-1]
  if kd % 2:
    raise ValueError(f"rope needs an even head dimension; got head_dim={kd}")
  inv_freq = base ** (-2.0 * jnp.arange(kd // 2, dtype=jnp.float32) / kd)
  angle_LH = positions_L.astype(jnp.float32)[:, None] * inv_freq[None, :]
  cos_1L1H = jnp.cos(angle_LH)[None, :, None, :]
  sin_1L1H = jnp.sin(angle_LH)[None, :, None, :]
  b, l, n, _ = x_BLNK.shape
  x_BLNH2 = x_BLNK.astype(jnp.float32).reshape(b, l, n, kd // 2, 2)
  even, odd = x_BLNH2[..., 0], x_BLNH2[..., 1]
  out_BLNH2 = jnp.stack([even * cos_1L1H - odd * sin_1L1H, even * sin_1L1H + odd * cos_1L1H],
                        axis=-1)
  return out_BLNH2.reshape(b, l, n, kd).astype(x_BLNK.dtype)


def alibi_slopes(num_heads: int) -> np.ndarray:
  """Press et al. (2022) head slopes: 2^(-8/n), 2^(-16/n), ... for n a power of two.

  Otherwise (the paper's rule, as in its reference code): the slopes for the closest lower power of
  two p, followed by every other slope of the 2p sequence until there are num_heads slopes.
  """
  def power_of_two(n):
    start = 2.0 ** (-8.0 / n)
    return [start ** (i + 1) for i in range(n)]
  if num_heads < 1:
    raise ValueError(f"num_heads must be positive; got {num_heads}")
  p = 2 ** int(math.floor(math.log2(num_heads)))
  slopes = power_of_two(p)
  if p != num_heads:
    slopes += power_of_two(2 * p)[0::2][:num_heads - p]
  return np.asarray(slopes, np.float32)


def alibi_bias(num_heads: int, q_positions_L, k_positions_S):
  """-slope_n * |i - j| as bias_1NLS (float32).

  The paper defines the causal case, -slope * (i - j) for j <= i; the absolute distance agrees with
  it there and gives the usual symmetric form for non-causal encoders.
  """
  slopes_N = jnp.asarray(alibi_slopes(num_heads))
  dist_LS = jnp.abs(q_positions_L[:, None] - k_positions_S[None, :]).astype(jnp.float32)
  return -(slopes_N[:, None, None] * dist_LS[None])[None]


def alibi_causal_bias(num_heads: int, k_positions_S):
  """slope_n * j as bias_1N1S: the causal ALiBi bias shifted by slope_n * i in every query row.

  Softmax ignores a per-row constant and causal attention hides j > i, so this gives the same
  weights as ``alibi_bias`` with O(N S) memory instead of O(N L S), which is what lets ALiBi run
  with memory-efficient attention at long lengths. Float32 logits then carry an absolute error of
  about slope * S * 6e-8.
  """
  slopes_N = jnp.asarray(alibi_slopes(num_heads))
  return (slopes_N[:, None] * k_positions_S.astype(jnp.float32)[None, :])[None, :, None, :]
