"""The mLSTM layer, the sequence mixer of xLSTM's pre-up-projection block (Beck et al. 2024,
Figure 10; the xlstm package's mLSTMLayer):

  [x_m, z] = up_proj(x)                          D -> 2 H, H = expand D, no bias
  x_c = SiLU(causal conv(x_m))                   d_conv taps
  q, k = blocks(x_c), v = blocks(x_m)            block-diagonal projections, blocks of qkv_block
  i~, f~ = [q, k, v] W_i + b_i, [q, k, v] W_f + b_f    one pre-activation per head
  h~ = mLSTM(q, k, v, i~, f~)                    mlstm.py, N heads of H / N
  output = down_proj((LayerNorm_heads(h~) + skip * x_c) * SiLU(z))

Initialisation: the package's for its own parameters (W_i, W_f zero; b_f linearly from 3 to 6 over
the heads, b_i normal with std 0.1; skip 1; the norm's scale 1; the convolution PyTorch's Conv1d
default); the up, down and q/k/v projections follow ``init_scheme``. Unlike the package, H is not
rounded up to a multiple of 64.

Decoding state: MLSTMState (the cell's C, n, m and the convolution's last inputs, float32).
``impl="reference"``: the convolution and the cell step by step; "fast": the chunked form.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from attnlab.models import checks, initializers, masks
from attnlab.models.linear_attention import fields
from attnlab.models.mamba import causal_conv
from attnlab.models.xlstm import mlstm
from attnlab.models.xlstm.slstm import head_norm


class MLSTMState(NamedTuple):
  """What decoding carries (float32)."""
  cell: mlstm.MLSTMCellState  # C [B, N, K, K], n [B, N, K], m [B, N]
  conv_BZH: jax.Array  # the last d_conv - 1 inputs of the convolution


def check_fields(d_model, num_heads, expand, qkv_block, d_conv, chunk, impl="fast") -> None:
  """ValueError naming the first bad field (d_model None: before the width is known)."""
  for name, value in (("expand", expand), ("qkv_block", qkv_block), ("d_conv", d_conv),
                      ("chunk", chunk)):
    fields.check_positive(name, value)
  fields.check_positive("num_heads", num_heads)
  checks.check_impl(impl)
  if d_model is None:
    return
  h = expand * d_model
  if h % num_heads:
    raise ValueError(f"num_heads={num_heads}; must divide the inner width expand * d_model ({h})")
  if h % qkv_block:
    raise ValueError(f"qkv_block={qkv_block}; must divide the inner width expand * d_model ({h})")


def linspace_init(start, end):
  def init(key, shape, dtype=jnp.float32):
    del key
    return jnp.linspace(start, end, shape[0], dtype=jnp.float32).astype(dtype)
  return init


class MLSTMLayer(nn.Module):
  """``(x_BLD, lengths_B=None, state=None, *, deterministic=True) -> (y_BLD, MLSTMState)``.
  y is in ``dtype`` (zero past each sequence's end), the state float32."""
  num_heads: int = 4  # N; head size K = expand D / N
  expand: int = 2  # inner width H = expand * D (the package's proj_factor)
  qkv_block: int = 4  # block size of the q/k/v projections (the package's qkv_proj_blocksize)
  d_conv: int = 4  # taps of the causal convolution
  chunk: int = 64  # time steps per chunk of the chunked form
  impl: str = "fast"  # "fast": the chunked form; "reference": conv and cell step by step
  dtype: Any = jnp.float32  # compute dtype of the projections and the chunked matmuls
  param_dtype: Any = jnp.float32  # dtype of the stored parameters
  init_scheme: str = initializers.DEFAULT  # dense projections' init (initializers.SCHEMES)

  def state_size(self, d_model: int, length: int) -> int:
    del length
    h = self.expand * d_model
    k = h // self.num_heads
    return self.num_heads * (k * k + k + 1) + (self.d_conv - 1) * h

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, state=None, *, deterministic=True):
    del deterministic
    check_fields(x_BLD.shape[-1], self.num_heads, self.expand, self.qkv_block, self.d_conv,
                 self.chunk, self.impl)
    fields.check_inputs("MLSTMLayer", x_BLD, lengths_B, None, ())
    b, l, d = x_BLD.shape
    h, n, blk = self.expand * d, self.num_heads, self.qkv_block
    k = h // n
    if state is not None:
      want = [(b, n, k, k), (b, n, k), (b, n), (b, self.d_conv - 1, h)]
      got = [jnp.shape(s) for s in jax.tree_util.tree_leaves(state)]
      if got != want:
        raise ValueError(f"MLSTMLayer state must have shapes {want} (C, n, m, conv); got {got}")
    pdt = self.param_dtype
    f32 = lambda a: a.astype(jnp.float32)  # noqa: E731
    up = nn.Dense(2 * h, use_bias=False, dtype=self.dtype, param_dtype=pdt, name="up_proj",
                  **initializers.linear(self.init_scheme, d))(x_BLD)
    x_m_BLH, z_BLH = up[..., :h], up[..., h:]
    bound = 1.0 / math.sqrt(self.d_conv)
    conv_kernel = self.param("conv_kernel", initializers.uniform(bound), (self.d_conv, h), pdt)
    conv_bias = self.param("conv_bias", initializers.uniform(bound), (h,), pdt)
    blocks = {name: self.param(name, initializers.kernel(self.init_scheme, blk),
                               (h // blk, blk, blk), pdt) for name in ("query", "key", "value")}
    gate_kernels = {name: self.param(f"{name}_kernel", nn.initializers.zeros_init(), (3 * h, n),
                                     pdt) for name in ("igate", "fgate")}
    i_bias = self.param("igate_bias", nn.initializers.normal(0.1), (n,), pdt)
    f_bias = self.param("fgate_bias", linspace_init(3.0, 6.0), (n,), pdt)
    scale = self.param("norm_scale", nn.initializers.ones_init(), (n, k), pdt)
    skip_H = self.param("skip", nn.initializers.ones_init(), (h,), pdt)

    def block_dot(x_H, name):  # [..., H] -> [..., H] through the block-diagonal projection
      # The block axis leads (XLA:CPU fails some bf16 dots whose batch axes are elsewhere).
      x_JMI = jnp.swapaxes(x_H.reshape(-1, h // blk, blk), 0, 1).astype(self.dtype)
      y_JMO = jnp.einsum("jmi,jio->jmo", x_JMI, blocks[name].astype(self.dtype),
                         preferred_element_type=jnp.float32)
      return jnp.swapaxes(y_JMO, 0, 1).reshape(x_H.shape)

    def gates(q, kk, v):  # [..., H] each -> (i~, f~) [..., N]
      qkv = jnp.concatenate([q, kk, v], axis=-1).astype(self.dtype)
      dot = lambda w, bias: jnp.matmul(qkv, w.astype(self.dtype),  # noqa: E731
                                       preferred_element_type=jnp.float32) + f32(bias).reshape(
                                           (1,) * (qkv.ndim - 1) + bias.shape)
      return dot(gate_kernels["igate"], i_bias), dot(gate_kernels["fgate"], f_bias)

    cell0, conv0 = (None, None) if state is None else state
    if self.impl == "reference":
      conv0 = causal_conv.zero_state(b, self.d_conv, h) if conv0 is None else f32(conv0)
      cell0 = mlstm.zero_state(b, n, k, k) if cell0 is None else mlstm.MLSTMCellState(
          *map(f32, cell0))
      valid_LB = jnp.swapaxes(jnp.ones((b, l), bool) if lengths_B is None else masks.valid_BL(
          lengths_B, l), 0, 1)

      def one_step(carry, inputs):
        cell, conv = carry
        x_m_BH, live_B = inputs
        x_c_BH, new_conv = causal_conv.conv_step(x_m_BH, conv_kernel, conv_bias, conv)
        x_c_BH = jax.nn.silu(x_c_BH)
        q, kk, v = block_dot(x_c_BH, "query"), block_dot(x_c_BH, "key"), block_dot(x_m_BH, "value")
        i_BN, f_BN = gates(q, kk, v)
        heads = lambda a: a.reshape(b, n, k)  # noqa: E731
        new_cell, h_BNK = mlstm.step(cell, heads(q), heads(kk) * k ** -0.5, heads(v), i_BN,
                                     jax.nn.log_sigmoid(f_BN))
        keep = lambda new, old: jnp.where(  # noqa: E731
            live_B.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)
        carry = jax.tree_util.tree_map(keep, (new_cell, new_conv), (cell, conv))
        return carry, (keep(h_BNK, jnp.zeros_like(h_BNK)), x_c_BH)

      (cell, conv_last), (h_LBNK, x_c_LBH) = jax.lax.scan(
          one_step, (cell0, conv0), (jnp.swapaxes(f32(x_m_BLH), 0, 1), valid_LB))
      h_BLNK, x_c_BLH = jnp.swapaxes(h_LBNK, 0, 1), jnp.swapaxes(x_c_LBH, 0, 1)
    else:
      x_c_BLH = jax.nn.silu(causal_conv.causal_conv(x_m_BLH, conv_kernel, conv_bias, conv0))
      q, kk, v = block_dot(x_c_BLH, "query"), block_dot(x_c_BLH, "key"), block_dot(x_m_BLH,
                                                                                    "value")
      i_BLN, f_BLN = gates(q, kk, v)
      heads = lambda a: a.reshape(b, l, n, k)  # noqa: E731
      h_BLNK, cell = mlstm.chunked_form(heads(q), heads(kk), heads(v), i_BLN, f_BLN,
                                        lengths_B=lengths_B, state=cell0, chunk=self.chunk,
                                        dtype=self.dtype)
      conv_last = causal_conv.next_state(x_m_BLH, conv0, lengths_B, self.d_conv)
    out_BLH = (head_norm(h_BLNK, f32(scale)).reshape(b, l, h)
               + f32(skip_H)[None, None] * f32(x_c_BLH)) * jax.nn.silu(f32(z_BLH))
    y_BLD = nn.Dense(d, use_bias=False, dtype=self.dtype, param_dtype=pdt, name="down_proj",
                     **initializers.linear(self.init_scheme, h))(out_BLH.astype(self.dtype))
    valid_BL = jnp.ones((b, l), bool) if lengths_B is None else masks.valid_BL(lengths_B, l)
    return jnp.where(valid_BL[..., None], y_BLD, 0).astype(self.dtype), MLSTMState(cell,
                                                                                   conv_last)
