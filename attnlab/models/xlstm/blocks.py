"""xLSTM's residual blocks and the network of them (Beck et al. 2024, section 2.4, Figures 9-10;
the xlstm package's xLSTMBlockStack):

  mLSTM block (pre-up-projection):   x = x + mLSTM layer(LayerNorm(x))     (the layer projects up
                                                                            and back down itself)
  sLSTM block (post-up-projection):  x = x + sLSTM layer(LayerNorm(x)),
                                     x = x + gated MLP(LayerNorm(x))       GeLU(x W_g) * x W_u, W_d

then a final LayerNorm. The norms have a scale and no bias, as the package's. Which blocks are
sLSTM blocks is the config's (config.py: xLSTM[a:b]).
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp

from attnlab.models import initializers


class GatedFeedForward(nn.Module):
  """GeLU(x W_g) * (x W_u), then W_d: the sLSTM block's up-projection (d_ff wide)."""
  d_ff: int
  dtype: Any = jnp.float32
  init_scheme: str = initializers.DEFAULT

  @nn.compact
  def __call__(self, x_BLD):
    d = x_BLD.shape[-1]
    dense = lambda size, fan_in, name: nn.Dense(  # noqa: E731
        size, use_bias=False, dtype=self.dtype, name=name,
        **initializers.linear(self.init_scheme, fan_in))
    gate_BLF, up_BLF = dense(self.d_ff, d, "gate")(x_BLD), dense(self.d_ff, d, "up")(x_BLD)
    return dense(d, self.d_ff, "down")(nn.gelu(gate_BLF, approximate=False) * up_BLF)


class XLSTMBackbone(nn.Module):
  """xLSTM blocks, x_BLD -> y_BLD: block i is an sLSTM block when i is in ``slstm_at``."""
  make_mixer: Callable[[int], nn.Module]  # block index -> its mLSTM or sLSTM layer (named)
  slstm_at: tuple[int, ...]  # indices of the sLSTM blocks
  num_layers: int  # blocks
  d_ff: int  # the sLSTM blocks' gated MLP width
  dropout_rate: float = 0.0  # on each block's residual branches
  dtype: Any = jnp.float32  # compute dtype
  init_scheme: str = initializers.DEFAULT  # the MLPs' (initializers.SCHEMES)

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, *, deterministic=True):
    drop = nn.Dropout(self.dropout_rate, deterministic=deterministic)
    norm = lambda name: nn.LayerNorm(use_bias=False, dtype=self.dtype, name=name)  # noqa: E731
    for i in range(self.num_layers):
      y_BLD, _ = self.make_mixer(i)(norm(f"norm_seq_{i}")(x_BLD), lengths_B,
                                    deterministic=deterministic)
      x_BLD = x_BLD + drop(y_BLD)
      if i in self.slstm_at:
        ff = GatedFeedForward(self.d_ff, self.dtype, self.init_scheme, name=f"ff_{i}")
        x_BLD = x_BLD + drop(ff(norm(f"norm_ff_{i}")(x_BLD)))
    return norm("norm_final")(x_BLD)
