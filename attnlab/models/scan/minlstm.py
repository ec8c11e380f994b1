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

from attnlab.models.scan.gated import GatedScan, g, log_g


def normalised_forget(kf, ki):
  """f' = f / (f + i) with f = sigmoid(kf), i = sigmoid(ki), finite for every kf, ki.

  As f / (f + i) it is 0/0 once both sigmoids underflow (kf, ki below about -88 in float32: inf
  or NaN). Written as (1 + e^u) / (2 + e^u + e^v), u = -ki, v = -kf, with numerator and denominator
  scaled by e^-m, m = max(u, v, 0): no exponent is positive and one term of the denominator is 1.
  """
  u, v = -ki, -kf
  m = jnp.maximum(jnp.maximum(u, v), 0.0)
  e_m, e_u, e_v = jnp.exp(-m), jnp.exp(u - m), jnp.exp(v - m)
  return (e_m + e_u) / (2.0 * e_m + e_u + e_v)


def plain_gates(kf, ki, kh):
  """(a, b) = (f', i' h~) of the linear recurrence from the three projections (autodiff)."""
  a = normalised_forget(kf, ki)
  return a, (1.0 - a) * g(kh)


gates = jax.custom_vjp(plain_gates)  # the same values with a lighter backward (_gates_bwd)


def _gates_fwd(kf, ki, kh):
  a, cand = normalised_forget(kf, ki), g(kh)
  return (a, (1.0 - a) * cand), (jax.nn.sigmoid(-kf), jax.nn.sigmoid(-ki), a, cand)


def _gates_bwd(res, ct):
  # From 1 - f, 1 - i, a = f' and h~ (i' = 1 - a; g' from h~ as in mingru._gates_bwd):
  # df'/dkf = f' (1 - f') (1 - f), df'/dki = -f' (1 - f') (1 - i).
  not_f, not_i, a, cand = res
  ct_a, ct_b = ct
  d = a * (1.0 - a) * (ct_a - ct_b * cand)
  d_cand = jnp.where(cand >= 0.5, 1.0, cand * (1.0 - cand))
  return d * not_f, -d * not_i, ct_b * (1.0 - a) * d_cand


gates.defvjp(_gates_fwd, _gates_bwd)


def log_coefficients(kf, ki, kh):
  """(log a, log b) = (log f', log i' + log g(k_h)) without forming the gates ("log" mode)."""
  d = jax.nn.softplus(-kf) - jax.nn.softplus(-ki)
  return -jax.nn.softplus(d), -jax.nn.softplus(-d) + log_g(kh)


class MinLSTM(GatedScan):
  """minLSTM layer (see gated.GatedScan): kernel columns [f, i, h~]."""
  num = 3
  gates = staticmethod(gates)
  plain_gates = staticmethod(plain_gates)
  log_coefficients = staticmethod(log_coefficients)
