"""Linear Recurrent Unit (Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for Long
Sequences"): a complex diagonal linear recurrence with a stable exponential parametrisation.

  lambda = exp(-exp(nu_log) + i exp(theta_log)),  gamma = exp(gamma_log)
  h_t = lambda * h_{t-1} + gamma * (B x_t),  y_t = Re(C h_t) + D x_t

B [D, P] and C [P, H] are complex (stored as real and imaginary parts), D [D, H] is real (the
paper's D is diagonal as its input and output sizes match; a full matrix here since they may
differ). Ring initialisation: |lambda| uniform on the ring r_min <= |lambda| <= r_max (uniform in
area), phase uniform in [0, max_phase]; gamma_log = log sqrt(1 - |lambda|^2) keeps the state's
scale at init.
P (the LRU's state size) is written ``P`` in shape suffixes.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from attnlab.models import checks, initializers
from attnlab.models.scan import linear_scan, step_scan, time_chunks



def ring_init(key, r_min, r_max, max_phase, size):
  """(nu_log, theta_log) with |lambda| uniform in area on the ring [r_min, r_max]."""
  k1, k2 = jax.random.split(key)
  u1 = jax.random.uniform(k1, (size,))
  u2 = jax.random.uniform(k2, (size,), minval=1e-7)  # a zero phase would make theta_log -inf
  nu_log = jnp.log(-0.5 * jnp.log(u1 * (r_max ** 2 - r_min ** 2) + r_min ** 2))
  return nu_log, jnp.log(max_phase * u2)


def eigenvalues(nu_log_P, theta_log_P):
  """lambda_P (complex64) from its exponential parametrisation."""
  return jnp.exp(jax.lax.complex(-jnp.exp(nu_log_P), jnp.exp(theta_log_P)))


def _state_and_outputs(dtype, scan_fn, params, x, h0_BP):
  """(h, y = Re(C h) + D x, not masked) of the fast form in either layout; scan_fn(a, b, h0).

  ``params`` = (kernel_DW = [gamma B_re | gamma B_im | D], lam_11P, c_QH = [C_re; -C_im]). Separate
  dots, not one sliced (nor a stacked [Re h, Im h]): their gradients are then separate dots too,
  with no concatenations.
  """
  kernel_DW, lam_11P, c_QH = params
  p = lam_11P.shape[-1]
  k = lambda w: linear_scan.matmul(x, w, dtype)  # noqa: E731
  h = scan_fn(lam_11P, jax.lax.complex(k(kernel_DW[:, :p]), k(kernel_DW[:, p:2 * p])), h0_BP)
  # Re(C h) = Re(C) Re(h) - Im(C) Im(h).
  y = (linear_scan.matmul(jnp.real(h).astype(dtype), c_QH[:p], dtype)
       + linear_scan.matmul(jnp.imag(h).astype(dtype), c_QH[p:], dtype) + k(kernel_DW[:, 2 * p:]))
  return h, y


def whole_sequence(dtype, segment, params, x_LBD, h0_BP, lengths_B):
  """The fast form on a whole time-major sequence: (y_LBH in ``dtype``, final state) from
  state h0 (or None), with linear_scan.py's segmented parallel scan (``segment`` steps each)."""
  scan_fn = lambda a, b, h0: linear_scan.linear_scan_time_major(a, b, h0, segment)  # noqa: E731
  h_LBP, y_LBH = _state_and_outputs(dtype, scan_fn, params, x_LBD, h0_BP)
  return (linear_scan.mask_outputs_time_major(y_LBH, lengths_B).astype(dtype),
          linear_scan.last_state_time_major(h_LBP, h0_BP, lengths_B))


def one_chunk(dtype, params, x_BTD, h0_BP, lengths_B, y_saved_BTH):
  """The fast form on one batch-major time chunk (the chunk function of ``time_chunks``):
  (y_BTH in ``dtype``, final state) from state h0, the chunk's steps run by ``step_scan``.
  ``y_saved_BTH`` is ignored: the complex state cannot be read back from y."""
  del y_saved_BTH
  h_BTP, y_BTH = _state_and_outputs(dtype, step_scan.step_scan, params, x_BTD, h0_BP)
  return (linear_scan.mask_outputs(y_BTH, lengths_B).astype(dtype),
          linear_scan.last_state(h_BTP, h0_BP, lengths_B))


class LRU(nn.Module):
  """LRU layer, a mixer (models/__init__.py): ``(x_BLD, lengths_B=None, state=None) -> (y_BLH,
  state_BP)``.

  The state is complex64 and the scan always runs in complex64 (float32 parts); y is returned in
  ``dtype``, zero past each sequence's length; the final state is h at length - 1.
  """
  hidden_size: int  # H, the output size
  d_state: int  # P, complex state dimensions
  r_min: float = 0.9  # smallest |lambda| at init (the paper's long-range setting; 0 in its code)
  r_max: float = 0.999  # largest |lambda| at init, <= 1
  max_phase: float = 2 * math.pi  # phases of lambda drawn from [0, max_phase]
  impl: str = "fast"  # "fast": the complex associative scan; "reference": step by step
  segment: int = linear_scan.SEGMENT  # steps per sequential segment of the parallel scan (0: none)
  # "fast": time steps per chunk of time_chunks (None: its default, chunks of 128 on CPU
  # from length 512; 0: none). Each time chunk is scanned step by step (step_scan.py); ``segment``
  # applies only without time chunks.
  time_chunk: int | None = None
  dtype: Any = jnp.float32  # compute dtype of the projections and of y
  param_dtype: Any = jnp.float32  # dtype of the stored parameters
  init_scheme: str = initializers.DEFAULT  # D's init (initializers.SCHEMES); the rest the paper's

  def _check(self, x_BLD, lengths_B, state_BP):
    if not 0.0 <= self.r_min < self.r_max <= 1.0:
      raise ValueError(f"LRU needs 0 <= r_min < r_max <= 1; got r_min={self.r_min}, "
                       f"r_max={self.r_max}")
    if not self.max_phase > 0.0:
      raise ValueError(f"LRU max_phase must be > 0; got {self.max_phase}")
    fitted = self.get_variable("params", "B_re").shape[0] if self.has_variable(
        "params", "B_re") else None
    checks.check_inputs("LRU", x_BLD, lengths_B, state_BP,
                        {"hidden_size": self.hidden_size, "d_state": self.d_state},
                        (self.d_state,), fitted, self.impl)

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, state=None, *, deterministic=True):
    del deterministic  # no dropout inside
    self._check(x_BLD, lengths_B, state)
    d, p, h = x_BLD.shape[-1], self.d_state, self.hidden_size
    ring = lambda i: lambda k: ring_init(k, self.r_min, self.r_max, self.max_phase, p)[i].astype(
        self.param_dtype)
    nu_log_P = self.param("nu_log", ring(0))
    theta_log_P = self.param("theta_log", ring(1))
    # log sqrt(1 - |lambda|^2), with |lambda|^2 = exp(-2 exp(nu_log)).
    gamma_log_P = self.param("gamma_log", lambda _: (0.5 * jnp.log(-jnp.expm1(
        -2.0 * jnp.exp(nu_log_P.astype(jnp.float32))))).astype(self.param_dtype))
    b_init = nn.initializers.normal(1.0 / math.sqrt(2 * d))
    b_re_DP = self.param("B_re", b_init, (d, p), self.param_dtype)
    b_im_DP = self.param("B_im", b_init, (d, p), self.param_dtype)
    c_init = nn.initializers.normal(1.0 / math.sqrt(p))
    c_re_PH = self.param("C_re", c_init, (p, h), self.param_dtype)
    c_im_PH = self.param("C_im", c_init, (p, h), self.param_dtype)
    d_DH = self.param("D", initializers.kernel(self.init_scheme, d), (d, h), self.param_dtype)

    # One matmul for gamma B x (real and imaginary parts) and D x.
    gamma_P = jnp.exp(gamma_log_P.astype(jnp.float32))
    kernel_DW = jnp.concatenate(
        [b_re_DP * gamma_P[None], b_im_DP * gamma_P[None], d_DH.astype(jnp.float32)], axis=1)
    h0_BP = None if state is None else jnp.asarray(state, jnp.complex64)
    # lambda is the same at every step and in every sequence: the scans broadcast it.
    lam_11P = eigenvalues(nu_log_P.astype(jnp.float32),
                          theta_log_P.astype(jnp.float32)).reshape(1, 1, p)
    c_QH = jnp.concatenate([c_re_PH, -c_im_PH], axis=0).astype(self.dtype)
    if self.impl == "fast":
      params = (kernel_DW, lam_11P, c_QH)
      size = time_chunks.resolve(self.time_chunk, x_BLD.shape[1])
      if size:
        h0_BP = jnp.zeros((x_BLD.shape[0], p), jnp.complex64) if h0_BP is None else h0_BP
        run = functools.partial(one_chunk, self.dtype)
        return time_chunks.over_time_chunks(run, size, params, x_BLD, h0_BP, lengths_B)
      # Time-major throughout (see linear_scan.linear_scan_time_major): x in and y out are transposed.
      y_LBH, last_BP = whole_sequence(self.dtype, self.segment, params, jnp.swapaxes(x_BLD, 0, 1),
                                      h0_BP, lengths_B)
      return jnp.swapaxes(y_LBH, 0, 1), last_BP
    k_BLW = linear_scan.project(x_BLD, kernel_DW, jnp.zeros((2 * p + h,), jnp.float32), self.dtype)
    bx_BLP = jax.lax.complex(k_BLW[..., :p], k_BLW[..., p:2 * p])
    a_1LP = jnp.broadcast_to(lam_11P, (1, x_BLD.shape[1], p))
    h_BLP, last_BP = linear_scan.sequential_scan(a_1LP, bx_BLP, h0_BP, lengths_B)
    hh_BLQ = jnp.concatenate([jnp.real(h_BLP), jnp.imag(h_BLP)], axis=-1).astype(self.dtype)
    y_BLH = linear_scan.matmul(hh_BLQ, c_QH, self.dtype)
    y_BLH = y_BLH + k_BLW[..., 2 * p:]
    y_BLH = linear_scan.mask_outputs(y_BLH, lengths_B)
    return y_BLH.astype(self.dtype), last_BP

  def state_size(self, d_model: int, length: int) -> int:
    """h: P complex numbers, 2P floats, whatever the length."""
    del d_model, length
    return 2 * self.d_state
