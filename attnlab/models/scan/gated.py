"""The gated scan layers' shared part: a layer whose gates see only the input.

``num`` projections of x give (a, b) of the linear recurrence h_t = a_t h_{t-1} + b_t
(``linear_scan.py``); minGRU (``mingru.py``) and minLSTM (``minlstm.py``) differ only in their gate
functions. This file holds the forms, input checks, parameters and layouts they share, and the
paper's positive activation g that keeps h~ positive so that the log-space form applies.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from attnlab.models import checks, initializers
from attnlab.models.scan import linear_scan, step_scan, time_chunks



def g(x):
  """The paper's positive activation: continuous, linear growth for x >= 0."""
  return jnp.where(x >= 0, x + 0.5, jax.nn.sigmoid(x))


def log_g(x):
  # relu keeps the unused branch finite, so its gradient is never NaN.
  return jnp.where(x >= 0, jnp.log(jax.nn.relu(x) + 0.5), -jax.nn.softplus(-x))


def _projections(num, dtype, params, x):
  """[k_i] = x W_i + b_i (float32) over x's last axis: one dot per projection, not one sliced, so
  that the weight gradient is one dot each as well, with no concatenation of their gradients."""
  kernel_DW, bias_W = params
  h = kernel_DW.shape[1] // num
  return [linear_scan.project(x, kernel_DW[:, i * h:(i + 1) * h], bias_W[i * h:(i + 1) * h], dtype)
          for i in range(num)]


def whole_sequence(gates, num, dtype, segment, params, x_LBD, h0_BH, lengths_B):
  """The fast (a, b) form on a whole time-major sequence: (y_LBH in ``dtype``, final state), from
  state h0 (or None), with linear_scan.py's segmented parallel scan (``segment`` steps each)."""
  h_LBH = linear_scan.linear_scan_time_major(*gates(*_projections(num, dtype, params, x_LBD)), h0_BH,
                                      segment)
  return (linear_scan.mask_outputs_time_major(h_LBH, lengths_B).astype(dtype),
          linear_scan.last_state_time_major(h_LBH, h0_BH, lengths_B))


def one_chunk(gates, num, dtype, params, x_BTD, h0_BH, lengths_B, y_saved_BTH):
  """The fast (a, b) form on one batch-major time chunk (the chunk function of ``time_chunks``):
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
  y_BTH, last_BH = linear_scan.finish(h_BTH, h0_BH, lengths_B)
  return y_BTH.astype(dtype), last_BH


class GatedScan(nn.Module):
  """A layer whose gates see only the input: ``num`` projections of x give (a, b) of linear_scan.py's
  linear recurrence. Subclasses set ``num`` and the three gate functions; the forms, checks,
  parameters and layouts are shared here.

  A mixer (models/__init__.py): ``(x_BLD, lengths_B=None, state=None) -> (y_BLH, state_BH)``:
  outputs are zero past each sequence's length and the state is h at length - 1. The scan always
  runs in float32; y is returned in ``dtype``, the state in float32.
  """
  hidden_size: int  # H
  # "fast" scans the (a, b) pairs in parallel; "reference" is the plain step-by-step lax.scan the
  # tests compare against. The (a, b) pair combine never divides (products of a in (0, 1) only
  # shrink), so it is as stable as the paper's log-space form at any length, rounds less, and is
  # cheaper (no exp/log/logaddexp per combine).
  impl: str = "fast"
  log_space: bool = False  # "fast" in log space instead, the paper's form (log a, log b)
  segment: int = linear_scan.SEGMENT  # steps per sequential segment of the parallel scan (0: none)
  # "fast": time steps per chunk of time_chunks (None: its default, chunks of 128 on CPU
  # from length 512; 0: none). Each time chunk is scanned step by step (step_scan.py); ``segment``
  # applies only without time chunks.
  time_chunk: int | None = None
  dtype: Any = jnp.float32  # compute dtype of the input projection and of y
  param_dtype: Any = jnp.float32  # dtype of the stored parameters
  init_scheme: str = initializers.DEFAULT  # dense projections' init (initializers.SCHEMES)

  # Class constants a subclass sets (not fields): ``num``, the projections of x in the kernel's
  # column order; ``gates(*k)`` -> (a, b) with a hand-written backward ("fast");
  # ``plain_gates(*k)``, the same by autodiff ("reference"); ``log_coefficients(*k)`` ->
  # (log a, log b) (``log_space``).
  num = 0

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, state=None, *, deterministic=True):
    del deterministic  # no dropout inside
    h = self.hidden_size
    fitted = self.get_variable("params", "kernel").shape[0] if self.has_variable(
        "params", "kernel") else None
    checks.check_inputs(type(self).__name__, x_BLD, lengths_B, state, {"hidden_size": h}, (h,),
                        fitted, self.impl)
    # One [D, num * H] kernel for all projections.
    d = x_BLD.shape[-1]
    kernel_DW = self.param("kernel", initializers.kernel(self.init_scheme, d), (d, self.num * h),
                           self.param_dtype)
    bias_W = self.param("bias", initializers.bias(self.init_scheme, d), (self.num * h,),
                        self.param_dtype)
    part = lambda w, i: w[..., i * h:(i + 1) * h]  # noqa: E731
    if self.impl == "fast" and not self.log_space:
      size = time_chunks.resolve(self.time_chunk, x_BLD.shape[1])
      if size:
        h0_BH = (jnp.zeros((x_BLD.shape[0], h), jnp.float32) if state is None
                 else state.astype(jnp.float32))
        run = functools.partial(one_chunk, self.gates, self.num, self.dtype)
        return time_chunks.over_time_chunks(run, size, (kernel_DW, bias_W), x_BLD, h0_BH,
                                            lengths_B)
      # Time-major throughout (see linear_scan.linear_scan_time_major): one transpose in, one out.
      y_LBH, last_BH = whole_sequence(self.gates, self.num, self.dtype, self.segment,
                                      (kernel_DW, bias_W), jnp.swapaxes(x_BLD, 0, 1),
                                      state, lengths_B)
      return jnp.swapaxes(y_LBH, 0, 1), last_BH
    k_BLW = linear_scan.project(x_BLD, kernel_DW, bias_W, self.dtype)
    k_BLH = [part(k_BLW, i) for i in range(self.num)]
    if self.impl == "fast":  # log_space
      h_BLH, last_BH = linear_scan.log_linear_scan(*self.log_coefficients(*k_BLH), state,
                                                   lengths_B, self.segment)
    else:
      h_BLH, last_BH = linear_scan.sequential_scan(*self.plain_gates(*k_BLH), state, lengths_B)
    return h_BLH.astype(self.dtype), last_BH

  def state_size(self, d_model: int, length: int) -> int:
    """h: H floats, whatever the length."""
    del d_model, length
    return self.hidden_size
