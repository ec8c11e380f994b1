"""MinLSTM: every mode equals the paper's equations run step by step, forward and backward
(the shared GatedScan tests of gated_scan_cases.py, run for MinLSTM)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from attnlab.models.scan import minlstm
from attnlab.models.scan.minlstm import MinLSTM
from tests.models.scan.gated_scan_cases import *  # noqa: F401,F403
from tests.models.scan.gated_scan_cases import H, sigmoid

LAYER = MinLSTM


def reference_gates(k):
  """minLSTM: a = f' = f / (f + i), w = i' = i / (f + i)."""
  f, i = sigmoid(k[..., :H]), sigmoid(k[..., H:2 * H])
  return f / (f + i), i / (f + i)


def test_gates_finite_where_both_sigmoids_underflow():
  """f' = f / (f + i) was 0/0 (inf, NaN) once f and i both underflow (k below about -88): the
  gates now equal the float64 log-space value there too, with finite gradients."""
  kf = np.array([-20.0, -95.0, -110.0, -300.0, 3.0, 0.0, -200.0, 300.0])
  ki = np.array([-20.0, -95.0, -100.0, -300.0, -2.0, -200.0, 0.0, 300.0])
  log_f, log_i = -np.logaddexp(0.0, -kf), -np.logaddexp(0.0, -ki)
  want_a = 1.0 / (1.0 + np.exp(log_i - log_f))
  # d f'/d kf = f' (1 - f') (1 - f), d f'/d ki = -f' (1 - f') (1 - i).
  want_grads = (want_a * (1 - want_a) / (1 + np.exp(kf)), -want_a * (1 - want_a) / (1 + np.exp(ki)))
  kh = jnp.full(kf.shape, 0.3)
  for fn in (minlstm.gates, minlstm.plain_gates):
    a, b = jax.jit(fn)(jnp.asarray(kf), jnp.asarray(ki), kh)
    np.testing.assert_allclose(a, want_a, rtol=1e-5, atol=1e-30)
    np.testing.assert_allclose(b, (1 - want_a) * 0.8, rtol=1e-5, atol=1e-30)
    grads = jax.grad(lambda f, i: jnp.sum(fn(f, i, kh)[0]), argnums=(0, 1))(
        jnp.asarray(kf, jnp.float32), jnp.asarray(ki, jnp.float32))
    for got, want in zip(grads, want_grads):
      np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-30)
