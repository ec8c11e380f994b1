"""step_scan equals the plain lax.scan recurrence: h and the gradients of a, b, h0 (a broadcast);
given_states, fed the states, has step_scan's gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models.scan.step_scan import given_states, step_scan

B, T, H = 3, 7, 4


def _reference(a, b, h0):
  """h_t = a_t h_{t-1} + b_t by lax.scan over time, differentiated by JAX."""
  a = jnp.broadcast_to(a, b.shape)

  def step(h, ab):
    h = ab[0] * h + ab[1]
    return h, h

  _, h_TB = jax.lax.scan(step, h0, (jnp.swapaxes(a, 0, 1), jnp.swapaxes(b, 0, 1)))
  return jnp.swapaxes(h_TB, 0, 1)


def _inputs(a_shape, dtype):
  ka, kb, kh = jax.random.split(jax.random.PRNGKey(0), 3)
  a = jax.random.uniform(ka, a_shape, minval=0.3, maxval=1.0)
  b, h0 = jax.random.normal(kb, (B, T, H)), jax.random.normal(kh, (B, H))
  if dtype == jnp.complex64:
    a = a * jnp.exp(1j * jax.random.uniform(kh, a_shape, maxval=3.0))
    b, h0 = b * (1 + 0.5j), h0 * (0.5 - 1j)
  return a.astype(dtype), b.astype(dtype), h0.astype(dtype)


@pytest.mark.parametrize("a_shape", [(B, T, H), (1, 1, H), (B, 1, H)])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.complex64])
def test_equals_sequential_reference(a_shape, dtype):
  a, b, h0 = _inputs(a_shape, dtype)
  np.testing.assert_allclose(jax.jit(step_scan)(a, b, h0), _reference(a, b, h0), rtol=1e-5,
                             atol=1e-5)
  w = jnp.cos(jnp.arange(B * T * H)).reshape(B, T, H)

  def loss(f):  # real for complex h too: Re and Im enter with different weights
    return lambda a, b, h0: jnp.sum(jnp.real(f(a, b, h0)) * w + 0.5 * jnp.imag(f(a, b, h0)))

  # given_states: the states come from the reference (outside the differentiated function).
  h = _reference(a, b, h0)
  given = lambda a, b, h0: given_states(a, b, h0, h)  # noqa: E731
  want = jax.grad(loss(_reference), argnums=(0, 1, 2))(a, b, h0)
  for f in (step_scan, given):
    got = jax.jit(jax.grad(loss(f), argnums=(0, 1, 2)))(a, b, h0)
    for g, r in zip(got, want):
      assert g.shape == r.shape
      np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5)
