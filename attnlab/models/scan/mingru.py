"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?"): a GRU whose gate sees only the input.

  z_t = sigmoid(W_z x_t + b_z),  h~_t = g(W_h x_t + b_h),  h_t = (1 - z_t) h_{t-1} + z_t h~_t

Because z and h~ do not depend on h_{t-1}, this is the linear recurrence of ``linear_scan.py`` with
a = 1 - z, b = z h~, computed for all t at once. g(x) = x + 0.5 (x >= 0), sigmoid(x) (x < 0) keeps
h~ positive, as in the paper, so that the log-space form applies: log a = -softplus(k_z),
log b = -softplus(-k_z) + log g(k_h). Every mode computes the same function.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from attnlab.models.scan.gated import GatedScan, g, log_g


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


class MinGRU(GatedScan):
  """minGRU layer (see GatedScan): kernel columns [z, h~]."""
  num = 2
  gates = staticmethod(gates)
  plain_gates = staticmethod(plain_gates)
  log_coefficients = staticmethod(log_coefficients)
