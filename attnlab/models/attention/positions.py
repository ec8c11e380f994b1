"""Position information for attention: none, sinusoidal, learned, rotary (RoPE) and ALiBi.

Two kinds. Additive positions (sinusoidal, learned) are added to the embedded inputs once, before
the first block. Relative positions act inside every self-attention layer: RoPE rotates queries and
keys, ALiBi adds a distance penalty to the logits. Every function takes absolute positions, shared
by the batch (``positions_L``; the full pass: ``arange(L)``) or per sequence (``positions_BL``). A
decoder carrying a state passes each token's count of valid tokens before it in its sequence, so
that a sequence padded in an earlier call continues at its own length.
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


def sinusoidal(positions, d_model: int, max_timescale: float = 10000.0):
  """Vaswani et al. (2017): PE[p, 2i] = sin(p / 10000^(2i/D)), PE[p, 2i+1] = cos(same).

  positions_L -> pe_LD, or positions_BL -> pe_BLD.
  """
  half = (d_model + 1) // 2
  inv_freq = max_timescale ** (-2.0 * jnp.arange(half, dtype=jnp.float32) / d_model)
  inv_freq = inv_freq.reshape((1,) * positions.ndim + (-1,))  # explicit broadcasting
  angle = positions.astype(jnp.float32)[..., None] * inv_freq
  # Interleave sin (even features) and cos (odd features); drop the extra cos for odd D.
  pe = jnp.stack([jnp.sin(angle), jnp.cos(angle)], axis=-1)
  return pe.reshape(positions.shape + (2 * half,))[..., :d_model]


class LearnedPositions(nn.Module):
  """A trained table of ``max_len`` position vectors added to the inputs."""
  max_len: int  # table size: the longest sequence this model can take
  param_dtype: Any = jnp.float32  # storage dtype of the table

  @nn.compact
  def __call__(self, x_BLD, positions_BL=None):
    """Adds rows 0 .. L-1 of the table, or row positions_BL[b, i] to x_BLD[b, i].

    Traced positions past the table cannot be checked: they read its last row (clamped).
    """
    length, d = x_BLD.shape[1], x_BLD.shape[2]
    if length > self.max_len:
      raise ValueError(f"sequence length {length} is longer than the learned position table "
                       f"(max_len={self.max_len}); raise max_len or use another position")
    table_PD = self.param("embedding", nn.initializers.normal(stddev=0.02),
                          (self.max_len, d), self.param_dtype)
    if positions_BL is None:
      pe_1LD = jax.lax.dynamic_slice_in_dim(table_PD, 0, length, axis=0)[None]
      return x_BLD + pe_1LD.astype(x_BLD.dtype)
    pe_BLD = jnp.take(table_PD, positions_BL, axis=0, mode="clip")
    return x_BLD + pe_BLD.astype(x_BLD.dtype)


def rope(x_BLNK, positions, base: float = 10000.0):
  """Rotary embedding (Su et al. 2021): rotates feature pairs (2i, 2i+1) by angle p * base^(-2i/K).

  positions: positions_L (shared by the batch) or positions_BL. Applied to queries and keys,
  q_m . k_n then depends on m - n only.
  """
  kd = x_BLNK.shape[-1]
  if kd % 2:
    raise ValueError(f"rope needs an even head dimension; got head_dim={kd}")
  inv_freq = base ** (-2.0 * jnp.arange(kd // 2, dtype=jnp.float32) / kd)
  angle_BLH = (positions.astype(jnp.float32)[..., None]
               * inv_freq.reshape((1,) * positions.ndim + (-1,)))
  angle_BLH = angle_BLH.reshape((-1,) + angle_BLH.shape[-2:])  # [1, L, H] for positions_L
  cos_BL1H = jnp.cos(angle_BLH)[:, :, None, :]
  sin_BL1H = jnp.sin(angle_BLH)[:, :, None, :]
  b, l, n, _ = x_BLNK.shape
  x_BLNH2 = x_BLNK.astype(jnp.float32).reshape(b, l, n, kd // 2, 2)
  even, odd = x_BLNH2[..., 0], x_BLNH2[..., 1]
  out_BLNH2 = jnp.stack([even * cos_BL1H - odd * sin_BL1H, even * sin_BL1H + odd * cos_BL1H],
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


def alibi_bias(num_heads: int, q_positions, k_positions):
  """-slope_n * |i - j| as bias_1NLS (float32) from positions_L and positions_S, or as bias_BNLS
  from positions_BL and positions_BS.

  The paper defines the causal case, -slope * (i - j) for j <= i; the absolute distance agrees with
  it there and gives the usual symmetric form for non-causal encoders.
  """
  slopes_N = jnp.asarray(alibi_slopes(num_heads))
  dist = jnp.abs(q_positions[..., :, None] - k_positions[..., None, :]).astype(jnp.float32)
  if dist.ndim == 2:  # dist_LS
    return -(slopes_N[:, None, None] * dist[None])[None]
  return -(slopes_N[None, :, None, None] * dist[:, None])  # dist_BLS


def alibi_causal_bias(num_heads: int, k_positions_S):
  """slope_n * j as bias_1N1S: the causal ALiBi bias shifted by slope_n * i in every query row.

  Softmax ignores a per-row constant and causal attention hides j > i, so this gives the same
  weights as ``alibi_bias`` with O(N S) memory instead of O(N L S), which is what lets ALiBi run
  with memory-efficient attention at long lengths. Float32 logits then carry an absolute error of
  about slope * S * 6e-8.
  """
  slopes_N = jnp.asarray(alibi_slopes(num_heads))
  return (slopes_N[:, None] * k_positions_S.astype(jnp.float32)[None, :])[None, :, None, :]
