"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?"): a GRU whose gate sees only the input.

  z_t = sigmoid(W_z x_t + b_z),  h~_t = g(W_h x_t + b_h),  h_t = (1 - z_t) h_{t-1} + z_t h~_t

Because z and h~ do not depend on h_{t-1}, this is the linear recurrence of ``scan.py`` with
a = 1 - z, b = z h~, computed for all t at once. g(x) = x + 0.5 (x >= 0), sigmoid(x) (x < 0) keeps
h~ positive, as in the paper, so that the log-space form applies: log a = -softplus(k_z),
log b = -softplus(-k_z) + log g(k_h). Every mode computes the same function.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from attnlab.models import layer_checks, scan, step_scan, time_chunks

MODES = ("log", "linear", "sequential")  # log-space scan, plain (a, b) scan, step-by-step lax.scan


def g(x):
  """The paper's positive activation: continuous, linear growth for x >= 0."""
  return jnp.where(x >= 0, x + 0.5, jax.nn.sigmoid(x))


def log_g(x):
  # relu keeps the unused branch finite, so its gradient is never NaN.
  return jnp.where(x >= 0, jnp.log(jax.nn.relu(x) + 0.5), -jax.nn.softplus(-x))


def plain_gates(kz, kh):
  """(a, b) = (1 - z, z h~) of the linear recurrence from the two projections (autodiff)."""
  z = jax.nn.sigmoid(kz)
  return 1.0 - z, z * g(kh)


gates = jax.custom_vjp(plain_gates)  # the same values with a lighter backward (_gates_bwd)


def _gates_fwd(kz, kh):
  a, cand = 1.0 - jax.nn.sigmoid(kz), g(kh)
  return (a, (1.0 - a) * cand), (a, cand)


def _gates_bwd(res, ct):
  # Everything from a (the scan's input anyway) and h~ = g(kh): z = 1 - a, and
  # g'(kh) = 1 where h~ >= 0.5 (kh >= 0), else sigmoid'(kh) = h~ (1 - h~). Autodiff would store
  # z, sigmoid(kh) and g(kh) besides a and b, three more full-size arrays. (For -6e-8 < kh < 0,
  # where sigmoid rounds to 0.5, this takes g's right-hand derivative at the kink.)
  a, cand = res
  ct_a, ct_b = ct
  z = 1.0 - a
  d_cand = jnp.where(cand >= 0.5, 1.0, cand * (1.0 - cand))
  return (ct_b * cand - ct_a) * z * a, ct_b * z * d_cand


gates.defvjp(_gates_fwd, _gates_bwd)


def log_coefficients(kz, kh):
  """(log a, log b) of the recurrence, computed without forming a or b (the log-space mode)."""
  sp = jax.nn.softplus(kz)  # softplus(-k) = softplus(k) - k
  return -sp, kz - sp + log_g(kh)


def _projections(num, dtype, params, x):
  """[k_i] = x W_i + b_i (float32) over x's last axis: one dot per projection, not one sliced, so
  that the weight gradient is one dot each as well, with no concatenation of their gradients."""
  kernel_DG, bias_G = params
  h = kernel_DG.shape[1] // num
  return [scan.project(x, kernel_DG[:, i * h:(i + 1) * h], bias_G[i * h:(i + 1) * h], dtype)
          for i in range(num)]


def whole_sequence(gates, num, dtype, chunk, params, x_LBD, h0_BH, lengths_B):
  """The "linear" mode on a whole time-major sequence: (y_LBH in ``dtype``, final state), from
  state h0 (or None), with scan.py's chunked parallel scan (``chunk`` steps per run)."""
  h_LBH = scan.linear_scan_time_major(*gates(*_projections(num, dtype, params, x_LBD)), h0_BH,
                                      chunk)
  return (scan.mask_outputs_time_major(h_LBH, lengths_B).astype(dtype),
          scan.last_state_time_major(h_LBH, h0_BH, lengths_B))


def one_chunk(gates, num, dtype, params, x_BTD, h0_BH, lengths_B, y_saved_BTH):
  """The "linear" mode on one batch-major time chunk (the chunk function of ``time_chunks``):
  (y_BTH in ``dtype``, final state) from state h0, the chunk's steps run by ``step_scan``.

  When the backward pass recomputes the chunk, its saved y is its states h where it matters (y is
  h zeroed past each end, where no gradient reaches h): float32 y replaces the forward loop. (A
  lower-precision y would round the gradients: then the loop runs again.)
  """
  a_BTH, b_BTH = gates(*_projections(num, dtype, params, x_BTD))
  if y_saved_BTH is not None and y_saved_BTH.dtype == jnp.float32:
    h_BTH = step_scan.given_states(a_BTH, b_BTH, h0_BH, y_saved_BTH)
  else:
    h_BTH = step_scan.step_scan(a_BTH, b_BTH, h0_BH)
  y_BTH, last_BH = scan.finish(h_BTH, h0_BH, lengths_B)
  return y_BTH.astype(dtype), last_BH


class GatedScan(nn.Module):
  """A layer whose gates see only the input: ``num`` projections of x give (a, b) of scan.py's
  linear recurrence. Subclasses set ``num`` and the three gate functions; the modes, checks,
  parameters and layouts are shared here.

  ``(x_BLD, lengths_B=None, initial_state_BH=None) -> (y_BLH, final_state_BH)``: outputs are zero
  past each sequence's length and the final state is h at length - 1. The scan always runs in
  float32; y is returned in ``dtype``, the final state in float32.
  """
  hidden_size: int  # H
  # One of MODES; "sequential" is the plain reference the tests compare against. "linear" is the
  # default: the (a, b) pair combine never divides (products of a in (0, 1) only shrink), so it is
  # as stable as the log-space form at any length, rounds ~10x less at length 4096, and trains
  # ~1.8x faster on CPU (no exp/log/logaddexp per combine). "log" is the paper's form.
  mode: str = "linear"
  chunk: int = scan.CHUNK  # time steps per sequential run inside the parallel scan (0: none)
  # "linear" mode: time steps per chunk of time_chunks (None: its default, chunks of 128 on CPU
  # from length 512; 0: none). Each time chunk is scanned step by step (step_scan.py); ``chunk``
  # applies only without time chunks.
  time_chunk: int | None = None
  dtype: Any = jnp.float32  # compute dtype of the input projection and of y
  param_dtype: Any = jnp.float32  # dtype of the stored parameters

  # Class constants a subclass sets (not fields): ``num``, the projections of x in the kernel's
  # column order; ``gates(*k)`` -> (a, b) with a hand-written backward ("linear" mode);
  # ``plain_gates(*k)``, the same by autodiff ("sequential"); ``log_coefficients(*k)`` ->
  # (log a, log b) ("log").
  num = 0

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, initial_state_BH=None):
    h = self.hidden_size
    fitted = self.get_variable("params", "kernel").shape[0] if self.has_variable(
        "params", "kernel") else None
    layer_checks.check_inputs(type(self).__name__, x_BLD, lengths_B, initial_state_BH,
                      {"hidden_size": h}, (h,), fitted, self.mode, MODES)
    # One [D, num * H] kernel for all projections.
    kernel_DG = self.param("kernel", nn.initializers.lecun_normal(),
                           (x_BLD.shape[-1], self.num * h), self.param_dtype)
    bias_G = self.param("bias", nn.initializers.zeros_init(), (self.num * h,), self.param_dtype)
    part = lambda w, i: w[..., i * h:(i + 1) * h]  # noqa: E731
    if self.mode == "linear":
      size = time_chunks.resolve(self.time_chunk, x_BLD.shape[1])
      if size:
        h0_BH = (jnp.zeros((x_BLD.shape[0], h), jnp.float32) if initial_state_BH is None
                 else initial_state_BH.astype(jnp.float32))
        run = functools.partial(one_chunk, self.gates, self.num, self.dtype)
        return time_chunks.over_time_chunks(run, size, (kernel_DG, bias_G), x_BLD, h0_BH,
                                            lengths_B)
      # Time-major throughout (see scan.linear_scan_time_major): one transpose in, one out.
      y_LBH, last_BH = whole_sequence(self.gates, self.num, self.dtype, self.chunk,
                                      (kernel_DG, bias_G), jnp.swapaxes(x_BLD, 0, 1),
                                      initial_state_BH, lengths_B)
      return jnp.swapaxes(y_LBH, 0, 1), last_BH
    k_BLG = scan.project(x_BLD, kernel_DG, bias_G, self.dtype)
    k_BLH = [part(k_BLG, i) for i in range(self.num)]
    if self.mode == "log":
      h_BLH, last_BH = scan.log_linear_scan(*self.log_coefficients(*k_BLH), initial_state_BH,
                                            lengths_B, self.chunk)
    else:
      h_BLH, last_BH = scan.sequential_scan(*self.plain_gates(*k_BLH), initial_state_BH,
                                            lengths_B)
    return h_BLH.astype(self.dtype), last_BH


class MinGRU(GatedScan):
  """minGRU layer (see GatedScan): kernel columns [z, h~]."""
  num = 2
  gates = staticmethod(gates)
  plain_gates = staticmethod(plain_gates)
  log_coefficients = staticmethod(log_coefficients)
