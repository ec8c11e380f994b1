"""Hawk's recurrent block (De et al. 2024, "Griffin", Figure 2): two branches from the input,

  gate = GeLU(linear_y(x))                                  [H]
  rec  = RG-LRU(causal conv1d(linear_x(x)))                 [H], d_conv taps (rg_lru.py)
  output = linear_out(gate * rec)                           H -> D

H = lru_width. Parameter layout and initialisation as recurrentgemma's ``RecurrentBlock``: dense
layers with biases (Flax defaults), the convolution [d_conv, H] normal with variance 0.01 / d_conv
and a zero bias, the gates' blocks normal with variance 1 / K and zero biases.

Decoding: the block returns (y_BLD, HawkState) and takes ``state``, the state a previous
call returned: a call with L = 1 is one decoding step, a longer one a prompt (any mix equals one
call over the concatenated inputs). The state is the RG-LRU's h [B, H] and the convolution's last
Z = d_conv - 1 inputs [B, Z, H], both float32.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from attnlab.models import checks, initializers
from attnlab.models.hawk import rg_lru
from attnlab.models.mamba import causal_conv
from attnlab.models.scan import linear_scan, time_chunks



class HawkState(NamedTuple):
  """What decoding carries from one call to the next (float32)."""
  lru_BH: jax.Array  # the RG-LRU's state h
  conv_BZH: jax.Array  # the last Z = d_conv - 1 inputs of the convolution


def zero_state(batch: int, lru_width: int, d_conv: int = 4) -> HawkState:
  """The state before a sequence's first token."""
  return HawkState(jnp.zeros((batch, lru_width), jnp.float32),
                   causal_conv.zero_state(batch, d_conv, lru_width))


def check_fields(lru_width, num_heads, d_conv, a_min=0.9, a_max=0.999, c=rg_lru.C):
  """ValueError naming the first bad block field (``field=value; must be ...``); lru_width 0 is
  checked by the caller once it knows the input width."""
  for name, value, least in (("lru_width", lru_width, 0), ("num_heads", num_heads, 1),
                             ("d_conv", d_conv, 1)):
    if not isinstance(value, int) or value < least:
      raise ValueError(f"{name}={value!r}; must be an int >= {least}")
  if lru_width and lru_width % num_heads:
    raise ValueError(f"num_heads={num_heads}; must divide lru_width={lru_width}")
  if not 0.0 < a_min <= a_max < 1.0:
    raise ValueError(f"a_min={a_min}, a_max={a_max}; must be 0 < a_min <= a_max < 1")
  if not c > 0.0:
    raise ValueError(f"c={c}; must be > 0")


class HawkBlock(nn.Module):
  """A mixer (models/__init__.py): ``(x_BLD, lengths_B=None, state=None) -> (y_BLD, HawkState)``.

  y is zero past each sequence's length and in ``dtype``; the final state is the state after
  position length - 1 (the initial one for length 0).
  """
  lru_width: int = 0  # H, the RG-LRU's width; 0: D
  num_heads: int = 1  # N diagonal blocks of the gate weights (1: dense gates)
  d_conv: int = 4  # taps of the causal convolution
  a_min: float = 0.9  # a^c is uniform in [a_min, a_max] at initialisation
  a_max: float = 0.999
  c: float = rg_lru.C  # scale of the recurrence gate's exponent
  impl: str = "fast"  # "fast": the parallel / time-chunked scan; "reference": step by step
  segment: int = linear_scan.SEGMENT  # steps per sequential run of the parallel scan (0: none)
  # "fast": time steps per chunk of scan/time_chunks.py (None: its default, chunks of 128 on
  # CPU from length 512; 0: the whole sequence at once).
  time_chunk: int | None = None
  dtype: Any = jnp.float32  # compute dtype of the projections and of y
  param_dtype: Any = jnp.float32  # dtype of the stored parameters
  init_scheme: str = initializers.DEFAULT  # linear_x/y/out's (initializers.SCHEMES)

  def _check(self, x_BLD, lengths_B, state):
    width = self.lru_width or (x_BLD.shape[-1] if jnp.ndim(x_BLD) == 3 else 0)
    check_fields(width, self.num_heads, self.d_conv, self.a_min, self.a_max, self.c)
    time_chunks.check_fields(self.segment, self.time_chunk)
    fitted = self.get_variable("params", "linear_x")["kernel"].shape[0] if self.has_variable(
        "params", "linear_x") else None
    checks.check_inputs("HawkBlock", x_BLD, lengths_B, None, {}, (), fitted, self.impl)
    b = x_BLD.shape[0]
    causal_conv.check_state("HawkBlock", state, (b, width), b, self.d_conv, width)

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, state=None, *, deterministic=True):
    del deterministic  # no dropout inside
    self._check(x_BLD, lengths_B, state)
    b, _, d = x_BLD.shape
    h, n = self.lru_width or d, self.num_heads
    pdt = self.param_dtype
    dense = lambda width, fan_in, name: nn.Dense(  # noqa: E731
        width, dtype=self.dtype, param_dtype=pdt, name=name,
        **initializers.linear(self.init_scheme, fan_in))
    gate_BLH = nn.gelu(dense(h, d, "linear_y")(x_BLD).astype(jnp.float32))
    x_BLH = dense(h, d, "linear_x")(x_BLD)
    conv_kernel = self.param(  # [Z + 1, H]
        "conv_kernel", nn.initializers.variance_scaling(0.01, "fan_in", "normal"),
        (self.d_conv, h), pdt)
    conv_bias_H = self.param("conv_bias", nn.initializers.zeros_init(), (h,), pdt)
    gate_init = nn.initializers.variance_scaling(1.0, "fan_in", "normal", batch_axis=(0,))
    params = (self.param("a_gate", gate_init, (n, h // n, h // n), pdt),
              self.param("a_gate_bias", nn.initializers.zeros_init(), (h,), pdt),
              self.param("x_gate", gate_init, (n, h // n, h // n), pdt),
              self.param("x_gate_bias", nn.initializers.zeros_init(), (h,), pdt),
              self.param("Lambda", rg_lru.lambda_init(self.a_min, self.a_max, self.c), (h,), pdt))

    lru0, conv0 = (None, None) if state is None else state
    lru0 = None if lru0 is None else lru0.astype(jnp.float32)
    if self.impl == "reference":
      cell = functools.partial(rg_lru.step, self.dtype, self.c, params)
      h0 = jnp.zeros((b, h), jnp.float32) if lru0 is None else lru0
      y_BLH, last, conv_last = causal_conv.sequential(cell, conv_kernel, conv_bias_H, x_BLH, conv0,
                                                      h0, lengths_B)
    else:
      conv_BLH = causal_conv.causal_conv(x_BLH, conv_kernel, conv_bias_H, conv0)
      y_BLH, last = self._scan(params, conv_BLH, lru0, lengths_B)
      conv_last = causal_conv.next_state(x_BLH, conv0, lengths_B, self.d_conv)
    out_BLD = dense(d, h, "linear_out")(gate_BLH * y_BLH.astype(jnp.float32))
    return linear_scan.mask_outputs(out_BLD, lengths_B).astype(self.dtype), HawkState(last,
                                                                                      conv_last)

  def _scan(self, params, x_BLH, h0_BH, lengths_B):
    """The fast RG-LRU: (y_BLH, final state), in time chunks or whole."""
    size = time_chunks.resolve(self.time_chunk, x_BLH.shape[1])
    if size:
      h0_BH = jnp.zeros(x_BLH.shape[:1] + x_BLH.shape[2:], jnp.float32) if h0_BH is None else h0_BH
      run = functools.partial(rg_lru.one_chunk, self.dtype, self.c)
      return time_chunks.over_time_chunks(run, size, params, x_BLH, h0_BH, lengths_B)
    y_LBH, last = rg_lru.whole_sequence(self.dtype, self.c, self.segment, params,
                                        jnp.swapaxes(x_BLH, 0, 1), h0_BH, lengths_B)
    return jnp.swapaxes(y_LBH, 0, 1), last

  def state_size(self, d_model: int, length: int) -> int:
    """The RG-LRU's h [H] and the convolution's last d_conv - 1 inputs [H], H = lru_width (or D),
    whatever the length."""
    del length
    return (self.lru_width or d_model) * self.d_conv
