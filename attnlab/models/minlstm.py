"""minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): an LSTM whose gates see only the input.

  f_t = sigmoid(k_f),  i_t = sigmoid(k_i),  h~_t = g(k_h)   (k = W x_t + b, one fused matmul)
  f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t),  h_t = f'_t h_{t-1} + i'_t h~_t

The normalised gates make it time-independent in scale; the recurrence is the linear scan of
``scan.py`` with a = f', b = i' h~. Log-space form as in the paper: with
d = softplus(-k_f) - softplus(-k_i), log f' = -softplus(d), log i' = -softplus(-d),
log b = log i' + log g(k_h). Every mode computes the same function.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from attnlab.models import scan
from attnlab.models.mingru import g, log_g

MODES = ("log", "linear", "sequential")  # log-space scan, plain (a, b) scan, step-by-step lax.scan


def plain_gates(kf, ki, kh):
  """(a, b) = (f', i' h~) of the linear recurrence from the three projections (autodiff)."""
  f, i = jax.nn.sigmoid(kf), jax.nn.sigmoid(ki)
  total = f + i
  return f / total, i / total * g(kh)


gates = jax.custom_vjp(plain_gates)  # the same values with a lighter backward (_gates_bwd)


def _gates_fwd(kf, ki, kh):
  f, i, cand = jax.nn.sigmoid(kf), jax.nn.sigmoid(ki), g(kh)
  a = f / (f + i)
  return (a, (1.0 - a) * cand), (f, i, a, cand)


def _gates_bwd(res, ct):
  # From f, i, a = f' and h~ (i' = 1 - a; g' from h~ as in mingru._gates_bwd): autodiff would
  # also store f + i, i', sigmoid(kh) and g(kh) at full size.
  f, i, a, cand = res
  ct_a, ct_b = ct
  d = a * (1.0 - a) * (ct_a - ct_b * cand)
  d_cand = jnp.where(cand >= 0.5, 1.0, cand * (1.0 - cand))
  return d * (1.0 - f), -d * (1.0 - i), ct_b * (1.0 - a) * d_cand


gates.defvjp(_gates_fwd, _gates_bwd)


class MinLSTM(nn.Module):
  """minLSTM layer: ``(x_BLD, lengths_B=None, initial_state_BH=None) -> (y_BLH, final_state_BH)``.

  Outputs are zero past each sequence's length and the final state is h at length - 1. The scan
  always runs in float32; y is returned in ``dtype``, the final state in float32.
  """
  hidden_size: int  # H
  # One of MODES; "sequential" is the plain reference the tests compare against. "linear" is the
  # default: the (a, b) pair combine never divides (products of a in (0, 1) only shrink), so it is
  # as stable as the log-space form at any length, rounds ~10x less at length 4096, and trains
  # ~1.8x faster on CPU (no exp/log/logaddexp per combine). "log" is the paper's form.
  mode: str = "linear"
  chunk: int = scan.CHUNK  # time steps per sequential run inside the parallel scan (0: none)
  dtype: Any = jnp.float32  # compute dtype of the input projection and of y
  param_dtype: Any = jnp.float32  # dtype of the stored parameters

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, initial_state_BH=None):
    h = self.hidden_size
    fitted = self.get_variable("params", "kernel").shape[0] if self.has_variable(
        "params", "kernel") else None
    scan.check_inputs("MinLSTM", x_BLD, lengths_B, initial_state_BH, {"hidden_size": h}, (h,),
                      fitted, self.mode, MODES)
    # One matmul for the three projections: [D, 3H] ordered f, i, h~.
    kernel_DG = self.param("kernel", nn.initializers.lecun_normal(),
                           (x_BLD.shape[-1], 3 * h), self.param_dtype)
    bias_G = self.param("bias", nn.initializers.zeros_init(), (3 * h,), self.param_dtype)
    if self.mode == "linear":
      # Time-major throughout (see scan.linear_scan_time_major): one transpose in, one out.
      # Three dots, not one sliced: the weight gradient is then three dots as well, with no
      # full-size concatenation of the projections' gradients.
      x_LBD = jnp.swapaxes(x_BLD, 0, 1)
      kf_LBH, ki_LBH, kh_LBH = (scan.project(x_LBD, kernel_DG[:, i * h:(i + 1) * h],
                                             bias_G[i * h:(i + 1) * h], self.dtype)
                                for i in range(3))
      h_LBH = scan.linear_scan_time_major(*gates(kf_LBH, ki_LBH, kh_LBH), initial_state_BH,
                                          self.chunk)
      last_BH = scan.last_state_time_major(h_LBH, initial_state_BH, lengths_B)
      y_BLH = scan.mask_outputs(jnp.swapaxes(h_LBH, 0, 1), lengths_B)
      return y_BLH.astype(self.dtype), last_BH
    k_BLG = scan.project(x_BLD, kernel_DG, bias_G, self.dtype)
    kf_BLH, ki_BLH, kh_BLH = k_BLG[..., :h], k_BLG[..., h:2 * h], k_BLG[..., 2 * h:]
    if self.mode == "log":
      d_BLH = jax.nn.softplus(-kf_BLH) - jax.nn.softplus(-ki_BLH)
      h_BLH, last_BH = scan.log_linear_scan(
          -jax.nn.softplus(d_BLH), -jax.nn.softplus(-d_BLH) + log_g(kh_BLH), initial_state_BH,
          lengths_B, self.chunk)
    else:
      h_BLH, last_BH = scan.sequential_scan(*plain_gates(kf_BLH, ki_BLH, kh_BLH),
                                            initial_state_BH, lengths_B)
    return h_BLH.astype(self.dtype), last_BH
