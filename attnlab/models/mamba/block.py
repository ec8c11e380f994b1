"""The Mamba block (Gu & Dao 2023, Figure 3): a gated selective SSM, the whole sequence mixer.

  [x, z] = in_proj(input)                    2 H = 2 expand D, no bias
  u = SiLU(causal depthwise conv1d(x))       d_conv taps (conv_kernel, conv_bias)
  y = SSM(u) * SiLU(z)                       ssm.py
  output = out_proj(y)                       H -> D, no bias

Parameters and their initialisation follow the reference implementation (mamba_simple.py, as
``mambapy`` copies it): dt_proj's weight uniform in +-dt_rank^-1/2 and its bias the inverse softplus
of a step log-uniform in [dt_min, dt_max]; A_log = log(1..P) for every channel (S4D-real), D = 1;
the conv's PyTorch default (uniform in +-1/sqrt(d_conv)). The dense projections (in_proj, x_proj,
out_proj) follow ``init_scheme`` (models/initializers.py; "torch": PyTorch's Linear, as the
reference).

Decoding: the block returns (y_BLD, MambaState) and takes ``state``, the state a previous
call returned: a call with L = 1 is one decoding step, a longer one a prompt (any mix of the two
equals one call over the concatenated inputs). The state is the SSM's h [B, P, H] and the
convolution's last Z = d_conv - 1 inputs [B, Z, H], both float32.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from attnlab.models import checks, initializers
from attnlab.models.mamba import causal_conv, ssm
from attnlab.models.scan import linear_scan, time_chunks


class MambaState(NamedTuple):
  """What decoding carries from one call to the next (float32)."""
  ssm_BPH: jax.Array  # the SSM's state h (state index, then channel)
  conv_BZH: jax.Array  # the last Z = d_conv - 1 inputs of the convolution


def zero_state(batch: int, d_model: int, expand: int = 2, d_state: int = 16,
               d_conv: int = 4) -> MambaState:
  """The state before a sequence's first token."""
  h = expand * d_model
  return MambaState(jnp.zeros((batch, d_state, h), jnp.float32),
                    causal_conv.zero_state(batch, d_conv, h))


def _uniform(bound):
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


def dt_bias_init(dt_min, dt_max, floor):
  """softplus^-1 of a step size log-uniform in [dt_min, dt_max] (at least ``floor``)."""

  def init(key, shape, dtype=jnp.float32):
    u = jax.random.uniform(key, shape)
    dt = jnp.maximum(jnp.exp(u * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)), floor)
    return (dt + jnp.log(-jnp.expm1(-dt))).astype(dtype)

  return init


def check_fields(expand, d_state, d_conv, dt_rank, dt_min=0.001, dt_max=0.1):
  """ValueError naming the first bad block field (``field=value; must be ...``)."""
  for name, value, least in (("expand", expand, 1), ("d_state", d_state, 1), ("d_conv", d_conv, 1),
                             ("dt_rank", dt_rank, 0)):
    if not isinstance(value, int) or value < least:
      raise ValueError(f"{name}={value!r}; must be an int >= {least}")
  if not 0.0 < dt_min <= dt_max:
    raise ValueError(f"dt_min={dt_min}, dt_max={dt_max}; must be 0 < dt_min <= dt_max")


class MambaBlock(nn.Module):
  """A mixer (models/__init__.py): ``(x_BLD, lengths_B=None, state=None) -> (y_BLD, MambaState)``.

  y is zero past each sequence's length and in ``dtype``; the final state is the state after
  position length - 1 (the initial one for length 0).
  """
  expand: int = 2  # inner width H = expand * D
  d_state: int = 16  # P, state size per channel
  d_conv: int = 4  # taps of the causal convolution
  dt_rank: int = 0  # rank of the step-size projection; 0: ceil(D / 16)
  dt_min: float = 0.001  # initial step sizes are log-uniform in [dt_min, dt_max]
  dt_max: float = 0.1
  dt_init_floor: float = 1e-4  # smallest initial step size
  impl: str = "fast"  # "fast": the paths below (see chunk_size); "reference": step by step
  segment: int = linear_scan.SEGMENT  # steps per sequential run of the parallel scan (0: none)
  # "fast": time steps per chunk of scan/time_chunks.py, each run by selective_scan.py's
  # loop (None: chunk_size's default; 0: linear_scan.py's parallel scan over the whole sequence,
  # which holds [L, B, P, H] arrays; ``segment`` applies only then).
  time_chunk: int | None = None
  dtype: Any = jnp.float32  # compute dtype of the projections and of y
  param_dtype: Any = jnp.float32  # dtype of the stored parameters
  init_scheme: str = initializers.DEFAULT  # in/x/out projections' (initializers.SCHEMES)

  def _check(self, x_BLD, lengths_B, state):
    check_fields(self.expand, self.d_state, self.d_conv, self.dt_rank, self.dt_min, self.dt_max)
    time_chunks.check_fields(self.segment, self.time_chunk)
    fitted = self.get_variable("params", "in_proj").shape[0] if self.has_variable(
        "params", "in_proj") else None
    checks.check_inputs("MambaBlock", x_BLD, lengths_B, None, {}, (), fitted, self.impl)
    b, h = x_BLD.shape[0], self.expand * x_BLD.shape[-1]
    causal_conv.check_state("MambaBlock", state, (b, self.d_state, h), b, self.d_conv, h)

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, state=None, *, deterministic=True):
    del deterministic  # no dropout inside
    self._check(x_BLD, lengths_B, state)
    b, length, d = x_BLD.shape
    h, p = self.expand * d, self.d_state
    rank = self.dt_rank or ssm.dt_rank(d)
    pdt = self.param_dtype
    in_proj_DW = self.param("in_proj", initializers.kernel(self.init_scheme, d), (d, 2 * h), pdt)
    bound = 1.0 / math.sqrt(self.d_conv)
    conv_kernel = self.param("conv_kernel", _uniform(bound), (self.d_conv, h), pdt)  # [Z + 1, H]
    conv_bias_H = self.param("conv_bias", _uniform(bound), (h,), pdt)
    x_proj_HW = self.param("x_proj", initializers.kernel(self.init_scheme, h), (h, rank + 2 * p),
                           pdt)
    dt_kernel = self.param("dt_proj", _uniform(rank ** -0.5), (rank, h), pdt)  # [dt_rank, H]
    dt_bias_H = self.param("dt_bias", dt_bias_init(self.dt_min, self.dt_max, self.dt_init_floor),
                           (h,), pdt)
    a_log_HP = self.param("A_log", lambda _: jnp.log(jnp.broadcast_to(
        jnp.arange(1, p + 1, dtype=jnp.float32), (h, p))).astype(pdt))
    d_H = self.param("D", nn.initializers.ones_init(), (h,), pdt)
    out_proj_HD = self.param("out_proj", initializers.kernel(self.init_scheme, h), (h, d), pdt)
    params = (x_proj_HW, dt_kernel, dt_bias_H, a_log_HP, d_H)

    # Two dots, not one sliced: their weight gradients are then two dots too.
    x_BLH = linear_scan.matmul(x_BLD, in_proj_DW[:, :h], self.dtype)
    z_BLH = linear_scan.matmul(x_BLD, in_proj_DW[:, h:], self.dtype)
    ssm0, conv0 = (None, None) if state is None else state
    if self.impl == "reference":
      cell = lambda s, c: ssm.step(self.dtype, params, s, jax.nn.silu(c))  # noqa: E731
      s0 = jnp.zeros((b, p, h), jnp.float32) if ssm0 is None else ssm0.astype(jnp.float32)
      y_BLH, last, conv_last = causal_conv.sequential(cell, conv_kernel, conv_bias_H, x_BLH, conv0,
                                                      s0, lengths_B)
    else:
      u_BLH = jax.nn.silu(causal_conv.causal_conv(x_BLH, conv_kernel, conv_bias_H, conv0))
      y_BLH, last = self._scan(params, u_BLH, ssm0, lengths_B)
      conv_last = causal_conv.next_state(x_BLH, conv0, lengths_B, self.d_conv)
    gated_BLH = y_BLH.astype(jnp.float32) * jax.nn.silu(z_BLH)
    out_BLD = linear_scan.matmul(gated_BLH, out_proj_HD, self.dtype)
    out_BLD = linear_scan.mask_outputs(out_BLD, lengths_B).astype(self.dtype)
    return out_BLD, MambaState(last, conv_last)

  def _scan(self, params, u_BLH, h0_BPH, lengths_B):
    """The fast SSM: (y_BLH, final state), whole, as one chunk or in time chunks."""
    b, length, h = u_BLH.shape
    h0_BPH = None if h0_BPH is None else h0_BPH.astype(jnp.float32)
    size = chunk_size(self.time_chunk, b, length, h * self.d_state)
    if not size:
      y_LBH, last = ssm.whole_sequence(self.dtype, self.segment, params,
                                       jnp.swapaxes(u_BLH, 0, 1), h0_BPH, lengths_B)
      return jnp.swapaxes(y_LBH, 0, 1), last
    h0_BPH = jnp.zeros((b, self.d_state, h), jnp.float32) if h0_BPH is None else h0_BPH
    if size >= length:
      return ssm.one_chunk(self.dtype, params, u_BLH, h0_BPH, lengths_B, None)
    run = functools.partial(ssm.one_chunk, self.dtype)
    return time_chunks.over_time_chunks(run, size, params, u_BLH, h0_BPH, lengths_B)


  def state_size(self, d_model: int, length: int) -> int:
    """h [P, H] and the convolution's last d_conv - 1 inputs [H], H = expand * D, whatever the
    length."""
    del length
    h = self.expand * d_model
    return h * (self.d_state + self.d_conv - 1)

def chunk_size(time_chunk: int | None, batch: int, length: int, state: int) -> int:
  """Time steps per chunk (0: the whole sequence's parallel scan) for ``state`` float32 values per
  sequence and step.

  ``time_chunk`` when set (time_chunks.resolve). None: off CPU 0; on CPU the selective_scan.py loop,
  in chunks whose [B, T, P, H] arrays hold about CHUNK_VALUES values (a power of two, 8 to
  time_chunks.CPU_SIZE steps) from time_chunks.DEFAULT_MIN_CHUNKS chunks' length, as one chunk
  below that.
  """
  if time_chunk is not None or jax.default_backend() != "cpu":
    return time_chunks.resolve(time_chunk, length)
  size = 1 << max(3, (CHUNK_VALUES // max(1, batch * state)).bit_length() - 1)
  size = min(size, time_chunks.CPU_SIZE)
  return size if length >= time_chunks.DEFAULT_MIN_CHUNKS * size else length


CHUNK_VALUES = 1 << 20  # values of one [B, T, P, H] float32 chunk array on CPU (4 MB)
