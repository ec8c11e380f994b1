"""minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): an LSTM whose gates see only the input.

  f_t = sigmoid(k_f),  i_t = sigmoid(k_i),  h~_t = g(k_h)   (k = W x_t + b, one fused matmul)
  f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t),  h_t = f'_t h_{t-1} + i'_t h~_t

The normalised gates make it time-independent in scale; the recurrence is the linear scan of
``scan.py`` with a = f', b = i' h~. Log-space form as in the paper: with
d = softplus(-k_f) - softplus(-k_i), log f' = -softplus(d), log i' = -softplus(-d),
log b = log i' + log g(k_h). Every mode computes the same function.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from attnlab.models.mingru import GatedScan, g, log_g


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


def log_coefficients(kf, ki, kh):
  """(log a, log b) = (log f', log i' + log g(k_h)) without forming the gates ("log" mode)."""
  d = jax.nn.softplus(-kf) - jax.nn.softplus(-ki)
  return -jax.nn.softplus(d), -jax.nn.softplus(-d) + log_g(kh)


class MinLSTM(GatedScan):
  """minLSTM layer (see mingru.GatedScan): kernel columns [f, i, h~]."""
  num = 3
  gates = staticmethod(gates)
  plain_gates = staticmethod(plain_gates)
  log_coefficients = staticmethod(log_coefficients)
