"""The sLSTM (Beck et al. 2024, xLSTM, section 2.2) and its layer, the sequence mixer of the sLSTM
block: exponential gating with a normaliser and a stabiliser state, and a recurrence that is
block-diagonal across heads (each head's gates read only that head's hidden state).

  [i~, f~, z~, o~]_t = W x_t + R h_{t-1} + b         R: one [K, 4, K] block per head
  m_t = max(log sigmoid(f~_t) + m_{t-1}, i~_t)        (m_t = i~_t while n_{t-1} = 0: nothing seen)
  i_t = exp(i~_t - m_t),  f_t = exp(log sigmoid(f~_t) + m_{t-1} - m_t)
  c_t = f_t c_{t-1} + i_t tanh(z~_t),  n_t = f_t n_{t-1} + i_t,  h_t = sigmoid(o~_t) c_t / n_t

(the xlstm package's "vanilla" backend: exponential input gate, sigmoid forget gate). The layer
(the package's sLSTMLayer): x_conv = SiLU(causal conv(x)) (d_conv taps; none for d_conv 0) feeds
the i and f gates, x itself z and o, through block-diagonal (per head) projections; the output is
h under a per-head LayerNorm (scale only). Initialisation: the package's (R zero, the forget bias
its power law over each head's units for the first block, the other biases zero); the gate
projections follow ``init_scheme`` (fan-in: the head's K inputs).

``impl="reference"`` runs the convolution, the projections and the cell one step at a time;
"fast" computes the convolution and every input projection for the whole sequence at once and
scans only the recurrence. Decoding state: SLSTMState (float32), any split of a sequence into
calls equals one call.
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

NORM_EPS = 1e-5  # the per-head LayerNorm's (the package's)


class SLSTMState(NamedTuple):
  """What decoding carries (float32): the cell's states [B, D] and the convolution's inputs."""
  h_BD: jax.Array  # hidden state (what R reads)
  c_BD: jax.Array  # cell state
  n_BD: jax.Array  # normaliser
  m_BD: jax.Array  # stabiliser
  conv_BZD: jax.Array  # the last d_conv - 1 inputs of the convolution ([B, 0, D] without one)


def zero_state(batch: int, d_model: int, d_conv: int) -> SLSTMState:
  zeros = jnp.zeros((batch, d_model), jnp.float32)
  return SLSTMState(zeros, zeros, zeros, zeros,
                    jnp.zeros((batch, max(d_conv - 1, 0), d_model), jnp.float32))


def cell_step(state, raw_BNGK, recurrent_NKGK):
  """One step of the cell from the input part of the gates' pre-activations (W x + b,
  [B, N, 4, K] in the order i, f, z, o): (new (h, c, n, m), h), float32."""
  h, c, n, m = state  # each [B, N, K]
  raw_BNGK = raw_BNGK + jnp.einsum("bnk,nkgj->bngj", h, recurrent_NKGK)
  i_raw, f_raw, z_raw, o_raw = (raw_BNGK[:, :, g] for g in range(4))
  log_f_plus_m = m + jax.nn.log_sigmoid(f_raw)
  m_new = jnp.where(n == 0.0, i_raw, jnp.maximum(i_raw, log_f_plus_m))
  i_gate = jnp.exp(i_raw - m_new)
  f_gate = jnp.exp(log_f_plus_m - m_new)
  c = f_gate * c + i_gate * jnp.tanh(z_raw)
  n = f_gate * n + i_gate
  h = jax.nn.sigmoid(o_raw) * c / n
  return (h, c, n, m_new), h


def forget_bias_init(key, shape, dtype=jnp.float32):
  """[N, 4, K] biases: zero, the forget gate's the xlstm package's power law for block 0,
  -(-5 + 12 (k / (K - 1))^0.3) over each head's units k (from 5 down to -7)."""
  del key
  n, _, k = shape
  ramp = jnp.arange(k, dtype=jnp.float32) / max(k - 1, 1)
  forget = -(-5.0 + 12.0 * ramp ** 0.3)
  return jnp.zeros(shape, jnp.float32).at[:, 1].set(jnp.broadcast_to(forget, (n, k))).astype(dtype)


def check_fields(d_model, num_heads, d_conv, impl="fast") -> None:
  """ValueError naming the first bad field (d_model None: before the width is known)."""
  if d_model is None:
    fields.check_positive("num_heads", num_heads)
  else:
    fields.check_heads(d_model, num_heads)
  if isinstance(d_conv, bool) or not isinstance(d_conv, int) or d_conv < 0:
    raise ValueError(f"d_conv={d_conv!r}; must be an int >= 0 (0: no convolution)")
  checks.check_impl(impl)


def head_norm(h_BLNK, scale_NK):
  """LayerNorm over each head's K units (no bias), float32."""
  h = h_BLNK.astype(jnp.float32)
  mean = jnp.mean(h, axis=-1, keepdims=True)
  var = jnp.mean((h - mean) ** 2, axis=-1, keepdims=True)
  return (h - mean) * jax.lax.rsqrt(var + NORM_EPS) * scale_NK.reshape(
      (1,) * (h.ndim - 2) + scale_NK.shape)


class SLSTMLayer(nn.Module):
  """``(x_BLD, lengths_B=None, state=None, *, deterministic=True) -> (y_BLD, SLSTMState)``.
  y is in ``dtype`` (zero past each sequence's end), the state float32."""
  num_heads: int = 4  # N; head size K = D / N
  d_conv: int = 4  # taps of the causal convolution before the i and f gates (0: none)
  impl: str = "fast"  # "fast": projections batched, recurrence scanned; "reference": step by step
  dtype: Any = jnp.float32  # compute dtype of the projections and of y
  param_dtype: Any = jnp.float32  # dtype of the stored parameters
  init_scheme: str = initializers.DEFAULT  # the gate projections' (initializers.SCHEMES)

  def state_size(self, d_model: int, length: int) -> int:
    del length
    return 4 * d_model + max(self.d_conv - 1, 0) * d_model

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, state=None, *, deterministic=True):
    del deterministic
    check_fields(x_BLD.shape[-1], self.num_heads, self.d_conv, self.impl)
    fields.check_inputs("SLSTMLayer", x_BLD, lengths_B, None, ())
    b, l, d = x_BLD.shape
    n = self.num_heads
    k = d // n
    if state is not None:
      want = tuple(zero_state(b, d, self.d_conv))
      if [s.shape for s in state] != [s.shape for s in want]:
        raise ValueError(f"SLSTMLayer state must have shapes {[s.shape for s in want]} (h, c, n, "
                         f"m, conv); got {[jnp.shape(s) for s in state]}")
    pdt = self.param_dtype
    # Two block-diagonal projections: the convolved input to (i, f), the input to (z, o).
    w_conv = self.param("gates_conv", initializers.kernel(self.init_scheme, k), (n, k, 2, k), pdt)
    w_input = self.param("gates_input", initializers.kernel(self.init_scheme, k), (n, k, 2, k),
                         pdt)
    recurrent = self.param("recurrent", nn.initializers.zeros_init(), (n, k, 4, k), pdt)
    bias = self.param("bias", forget_bias_init, (n, 4, k), pdt)
    scale = self.param("norm_scale", nn.initializers.ones_init(), (n, k), pdt)
    if self.d_conv:
      bound = 1.0 / math.sqrt(self.d_conv)
      conv_kernel = self.param("conv_kernel", initializers.uniform(bound), (self.d_conv, d), pdt)
      conv_bias = self.param("conv_bias", initializers.uniform(bound), (d,), pdt)
    f32 = lambda a: a.astype(jnp.float32)  # noqa: E731

    def project(x_conv, x):  # [..., D] -> the gates' input part [..., N, 4, K] + b
      def dot(v, w):  # the head axis leads (XLA:CPU fails some bf16 dots with it elsewhere)
        v_NMK = jnp.swapaxes(v.reshape(-1, n, k), 0, 1).astype(self.dtype)
        y_NMGJ = jnp.einsum("nmk,nkgj->nmgj", v_NMK, w.astype(self.dtype),
                            preferred_element_type=jnp.float32)
        return jnp.swapaxes(y_NMGJ, 0, 1).reshape(v.shape[:-1] + (n, 2, k))
      raw = jnp.concatenate([dot(x_conv, w_conv), dot(x, w_input)], axis=-2)
      return raw + f32(bias).reshape((1,) * (raw.ndim - 3) + bias.shape)

    zero = zero_state(b, d, self.d_conv)
    h0, c0, n0, m0, conv0 = zero if state is None else state
    heads = lambda a: f32(a).reshape(b, n, k)  # noqa: E731
    carry0 = tuple(map(heads, (h0, c0, n0, m0)))
    valid_LB = jnp.swapaxes(
        jnp.ones((b, l), bool) if lengths_B is None else masks.valid_BL(lengths_B, l), 0, 1)

    def keep(live_B, new, old):
      return jax.tree_util.tree_map(
          lambda a, o: jnp.where(live_B.reshape((-1,) + (1,) * (a.ndim - 1)), a, o), new, old)

    if self.impl == "reference":
      def one_step(carry, inputs):
        cell, conv = carry
        x_BD, live_B = inputs
        if self.d_conv:
          x_conv_BD, new_conv = causal_conv.conv_step(x_BD, conv_kernel, conv_bias, conv)
          x_conv_BD = jax.nn.silu(x_conv_BD)
        else:
          x_conv_BD, new_conv = x_BD, conv
        new_cell, h = cell_step(cell, project(x_conv_BD, x_BD), f32(recurrent))
        return keep(live_B, (new_cell, new_conv), (cell, conv)), jnp.where(
            live_B[:, None, None], h, 0.0)

      (cell, conv_last), h_LBNK = jax.lax.scan(
          one_step, (carry0, f32(conv0)), (jnp.swapaxes(x_BLD, 0, 1), valid_LB))
    else:
      if self.d_conv:
        x_conv_BLD = jax.nn.silu(causal_conv.causal_conv(x_BLD, conv_kernel, conv_bias, conv0))
        conv_last = causal_conv.next_state(x_BLD, conv0, lengths_B, self.d_conv)
      else:
        x_conv_BLD, conv_last = x_BLD, f32(conv0)
      raw_LBNGK = jnp.swapaxes(project(x_conv_BLD, x_BLD), 0, 1)

      def one_step(cell, inputs):
        raw_BNGK, live_B = inputs
        new_cell, h = cell_step(cell, raw_BNGK, f32(recurrent))
        return keep(live_B, new_cell, cell), jnp.where(live_B[:, None, None], h, 0.0)

      cell, h_LBNK = jax.lax.scan(one_step, carry0, (raw_LBNGK, valid_LB))
    y_BLNK = head_norm(jnp.swapaxes(h_LBNK, 0, 1), f32(scale))
    y_BLD = jnp.where(jnp.swapaxes(valid_LB, 0, 1)[..., None], y_BLNK.reshape(b, l, d), 0.0)
    return y_BLD.astype(self.dtype), SLSTMState(*(s.reshape(b, d) for s in cell), conv_last)
