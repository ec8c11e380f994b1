"""The Mamba-2 block (Dao & Gu 2024, Figure 6; mamba_ssm's mamba2_simple.py), the whole mixer:

  [z, xBC, dt] = in_proj(input)               H = expand D, xBC = [x (H), B (K), C (K)], dt [N]
  x, B, C = SiLU(causal depthwise conv1d(xBC))   d_conv taps (conv_kernel, conv_bias)
  y = SSD(x, dt, A, B, C) + D x                ssd.py: N heads of U = H / N channels, one group
  output = out_proj(RMSNorm(y * SiLU(z)))      gated RMSNorm over H (norm after the gate)

with dt = softplus(dt + dt_bias) and A = -exp(A_log) per head. Initialisation as the reference:
A uniform in [1, 16], dt_bias the inverse softplus of a step log-uniform in [dt_min, dt_max], D = 1,
the norm's scale 1, the convolution PyTorch's Conv1d default (uniform in +-1/sqrt(d_conv)); the
in/out projections follow ``init_scheme``. ``allow_negative_eigenvalues``: a_t = 2 exp(dt A) - 1
in (-1, 1) instead of exp(dt A) (Grazzi et al. 2025).

Decoding: the state is the SSM's S [B, N, K, U] and the convolution's last d_conv - 1 inputs
[B, Z, H + 2K], both float32; any split of a sequence into calls equals one call.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from attnlab.models import checks, initializers, masks
from attnlab.models.linear_attention import fields
from attnlab.models.linear_attention.gated_deltanet import a_log_init
from attnlab.models.mamba import causal_conv
from attnlab.models.mamba.block import dt_bias_init
from attnlab.models.mamba2 import ssd

NORM_EPS = 1e-5  # the gated RMSNorm's epsilon (the reference's)


class Mamba2State(NamedTuple):
  """What decoding carries from one call to the next (float32)."""
  ssm_BNKU: jax.Array  # the SSD state per head: [d_state, head channels]
  conv_BZW: jax.Array  # the last Z = d_conv - 1 inputs of the convolution ([x, B, C])


def check_fields(d_model, expand, num_heads, d_state, d_conv, chunk, impl="fast",
                 allow_negative_eigenvalues=False) -> None:
  """ValueError naming the first bad field (d_model None: before the width is known)."""
  for name, value in (("expand", expand), ("d_state", d_state), ("d_conv", d_conv),
                      ("chunk", chunk)):
    fields.check_positive(name, value)
  fields.check_positive("num_heads", num_heads)
  if d_model is not None and (expand * d_model) % num_heads:
    raise ValueError(f"num_heads={num_heads}; must divide the inner width expand * d_model "
                     f"({expand * d_model})")
  checks.check_impl(impl)
  fields.check_bool("allow_negative_eigenvalues", allow_negative_eigenvalues)


def gated_rms_norm(y_BLH, z_BLH, scale_H):
  """RMSNorm(y * SiLU(z)) * scale over H (float32)."""
  g = y_BLH.astype(jnp.float32) * jax.nn.silu(z_BLH.astype(jnp.float32))
  return g * jax.lax.rsqrt(jnp.mean(g ** 2, axis=-1, keepdims=True) + NORM_EPS) * scale_H


class Mamba2Block(nn.Module):
  """``(x_BLD, lengths_B=None, state=None, *, deterministic=True) -> (y_BLD, Mamba2State)``.
  y is in ``dtype`` (zero past each sequence's end); the state is the one after each length - 1."""
  num_heads: int = 2  # N; each head has U = expand D / N channels
  expand: int = 2  # inner width H = expand * D
  d_state: int = 64  # K, the state size per channel (B and C)
  d_conv: int = 4  # taps of the causal convolution
  chunk: int = 64  # time steps per chunk of the chunked form
  allow_negative_eigenvalues: bool = False  # a_t = 2 exp(dt A) - 1 in (-1, 1)
  dt_min: float = 0.001  # initial step sizes are log-uniform in [dt_min, dt_max]
  dt_max: float = 0.1
  impl: str = "fast"  # "fast": ssd.chunked_form; "reference": conv and SSD step by step
  dtype: Any = jnp.float32  # compute dtype of the projections and the chunked matmuls
  param_dtype: Any = jnp.float32  # dtype of the stored parameters
  init_scheme: str = initializers.DEFAULT  # in/out projections' (initializers.SCHEMES)

  def state_size(self, d_model: int, length: int) -> int:
    del length
    h = self.expand * d_model
    return self.d_state * h + (self.d_conv - 1) * (h + 2 * self.d_state)

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, state=None, *, deterministic=True):
    del deterministic
    b, l, d = x_BLD.shape if x_BLD.ndim == 3 else (None, None, None)
    check_fields(x_BLD.shape[-1], self.expand, self.num_heads, self.d_state, self.d_conv,
                 self.chunk, self.impl, self.allow_negative_eigenvalues)
    h, n, k = self.expand * d, self.num_heads, self.d_state
    u, w = h // n, h + 2 * k
    fields.check_inputs("Mamba2Block", x_BLD, lengths_B, None, ())
    if state is not None:
      causal_conv.check_state("Mamba2Block", state, (b, n, k, u), b, self.d_conv, w)
    pdt = self.param_dtype
    in_proj = nn.Dense(2 * h + 2 * k + n, use_bias=False, dtype=self.dtype, param_dtype=pdt,
                       name="in_proj", **initializers.linear(self.init_scheme, d))
    bound = 1.0 / math.sqrt(self.d_conv)
    conv_kernel = self.param("conv_kernel", initializers.uniform(bound), (self.d_conv, w), pdt)
    conv_bias = self.param("conv_bias", initializers.uniform(bound), (w,), pdt)
    dt_bias_N = self.param("dt_bias", dt_bias_init(self.dt_min, self.dt_max, 1e-4), (n,), pdt)
    a_log_N = self.param("A_log", a_log_init, (n,), pdt)
    d_N = self.param("D", nn.initializers.ones_init(), (n,), pdt)
    scale_H = self.param("norm_scale", nn.initializers.ones_init(), (h,), pdt)

    zxbcdt = in_proj(x_BLD)
    z_BLH, xbc_BLW, dt_raw_BLN = zxbcdt[..., :h], zxbcdt[..., h:h + w], zxbcdt[..., h + w:]
    a_N = -jnp.exp(a_log_N.astype(jnp.float32))
    dt_bias = dt_bias_N.astype(jnp.float32)
    skip_N = d_N.astype(jnp.float32)
    ssm0, conv0 = (None, None) if state is None else state
    if self.impl == "reference":
      def cell(s_BNKU, conv_BW, dt_raw_BN):
        xbc_BW = jax.nn.silu(conv_BW)
        x_BNU = xbc_BW[:, :h].reshape(b, n, u)
        dt_BN = jax.nn.softplus(dt_raw_BN.astype(jnp.float32) + dt_bias[None])
        a_BN = ssd.decay(dt_BN * a_N[None], self.allow_negative_eigenvalues)
        s_BNKU, o_BNU = ssd.step(s_BNKU, xbc_BW[:, h + k:], xbc_BW[:, h:h + k],
                                 dt_BN[..., None] * x_BNU, a_BN)
        return s_BNKU, (o_BNU + skip_N[None, :, None] * x_BNU).reshape(b, h)

      s0 = jnp.zeros((b, n, k, u), jnp.float32) if ssm0 is None else ssm0.astype(jnp.float32)
      y_BLH, last, conv_last = _sequential(cell, conv_kernel, conv_bias, xbc_BLW, dt_raw_BLN,
                                           conv0, s0, lengths_B)
    else:
      xbc_BLW_act = jax.nn.silu(causal_conv.causal_conv(xbc_BLW, conv_kernel, conv_bias, conv0))
      x_BLNU = xbc_BLW_act[..., :h].reshape(b, l, n, u)
      dt_BLN = jax.nn.softplus(dt_raw_BLN.astype(jnp.float32) + dt_bias[None, None])
      log_a, negative = ssd.log_decay(dt_BLN * a_N[None, None], self.allow_negative_eigenvalues)
      o_BLNU, last = ssd.chunked_form(
          xbc_BLW_act[..., h + k:], xbc_BLW_act[..., h:h + k], dt_BLN[..., None] * x_BLNU, log_a,
          negative, lengths_B=lengths_B, state_BNKU=ssm0, chunk=self.chunk, dtype=self.dtype)
      y_BLH = (o_BLNU + skip_N[None, None, :, None] * x_BLNU).reshape(b, l, h)
      conv_last = causal_conv.next_state(xbc_BLW, conv0, lengths_B, self.d_conv)
    normed_BLH = gated_rms_norm(y_BLH, z_BLH, scale_H.astype(jnp.float32)[None, None])
    out_BLD = nn.Dense(d, use_bias=False, dtype=self.dtype, param_dtype=pdt, name="out_proj",
                       **initializers.linear(self.init_scheme, h))(normed_BLH.astype(self.dtype))
    valid_BL = masks.valid_BL(lengths_B, l)
    if valid_BL is not None:
      out_BLD = jnp.where(valid_BL[..., None], out_BLD, 0)
    return out_BLD.astype(self.dtype), Mamba2State(last, conv_last)


def _sequential(cell, kernel, bias, xbc_BLW, dt_raw_BLN, conv_BZW, state, lengths_B):
  """The convolution then ``cell(state, conv_BW, dt_raw_BN) -> (state, y_BH)``, one time step
  after another (a plain ``lax.scan``, as causal_conv.sequential with dt beside the convolution's
  input); past each length nothing changes and y is 0. Returns (y_BLH, state, conv state)."""
  if conv_BZW is None:
    conv_BZW = causal_conv.zero_state(xbc_BLW.shape[0], kernel.shape[0], xbc_BLW.shape[-1])

  def one_step(carry, inputs):
    state, conv_BZW = carry
    xbc_BW, dt_raw_BN, t = inputs
    conv_BW, new_conv_BZW = causal_conv.conv_step(xbc_BW, kernel, bias, conv_BZW)
    new_state, y_BH = cell(state, conv_BW, dt_raw_BN)
    if lengths_B is None:
      return (new_state, new_conv_BZW), y_BH
    live_B = t < lengths_B
    keep = lambda new, old: jnp.where(  # noqa: E731
        live_B.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)
    return ((keep(new_state, state), keep(new_conv_BZW, conv_BZW)),
            keep(y_BH, jnp.zeros_like(y_BH)))

  (state, conv_BZW), y_LBH = jax.lax.scan(
      one_step, (state, conv_BZW.astype(jnp.float32)),
      (jnp.swapaxes(xbc_BLW, 0, 1), jnp.swapaxes(dt_raw_BLN, 0, 1), jnp.arange(xbc_BLW.shape[1])))
  return jnp.swapaxes(y_LBH, 0, 1), state, conv_BZW
