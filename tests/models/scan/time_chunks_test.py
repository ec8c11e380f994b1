"""time_chunks.over_time_chunks equals one call of its chunk function over the whole sequence,
outputs and gradients (the reference: that call differentiated by JAX)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models.scan import time_chunks



@pytest.fixture(autouse=True)
def _float64():
  """float64 here (for these tests only): differences are then the method's, not rounding."""
  with jax.enable_x64(True):
    yield

B, L, D, H = 3, 11, 2, 4


def _rnn_chunk(params, x_BTD, h_BH, lengths_B, y_saved_BTH=None):
  """A nonlinear recurrence h' = tanh(x W + h U) run step by step; the state stops at each end.
  (Its saved outputs are ignored: the gated scans' use of them is tested with the layers.)"""
  del y_saved_BTH
  w_DH, u_HH = params

  def step(h_BH, xt):
    x_BD, t = xt
    new = jnp.tanh(x_BD @ w_DH + h_BH @ u_HH)
    if lengths_B is not None:
      new = jnp.where((t < lengths_B)[:, None], new, h_BH)
    return new, new

  x_TBD = jnp.swapaxes(x_BTD, 0, 1)
  last, y_TBH = jax.lax.scan(step, h_BH, (x_TBD, jnp.arange(x_TBD.shape[0])))
  return jnp.swapaxes(y_TBH, 0, 1), last


_whole = _rnn_chunk  # the reference: one call over the whole sequence


def _inputs():
  kw, ku, kx, kh = jax.random.split(jax.random.PRNGKey(0), 4)
  params = (jax.random.normal(kw, (D, H), jnp.float64),
            0.5 * jax.random.normal(ku, (H, H), jnp.float64))
  return (params, jax.random.normal(kx, (B, L, D), jnp.float64),
          jax.random.normal(kh, (B, H), jnp.float64))


def _loss(apply, argnums):
  w = jnp.cos(jnp.arange(B * L * H, dtype=jnp.float64)).reshape(B, L, H)

  def loss(params, x, h0, lengths):
    y, last = apply(params, x, h0, lengths)
    return jnp.sum(y * w) + jnp.sum(jnp.sin(last))
  return jax.value_and_grad(loss, argnums=argnums)


# 11 steps: chunks of 4 (two full, a last one of 3), 5, 1 (every step a chunk), 11 (one chunk),
# 16 (only the short last chunk); lengths ending inside a chunk, on a boundary, and at 0.
@pytest.mark.parametrize("size", [4, 5, 1, 11, 16])
@pytest.mark.parametrize("lengths", [None, (11, 4, 0)])
@pytest.mark.parametrize("argnums", [(0, 1, 2), (0,)])  # with and without dx (symbolic zeros)
def test_equals_one_call_over_the_whole_sequence(size, lengths, argnums):
  params, x, h0 = _inputs()
  lengths = None if lengths is None else jnp.array(lengths)
  chunked = lambda p, x, h, n: time_chunks.over_time_chunks(_rnn_chunk, size, p, x, h, n)  # noqa
  y, last = jax.jit(chunked)(params, x, h0, lengths)
  want_y, want_last = _whole(params, x, h0, lengths)
  np.testing.assert_allclose(y, want_y, rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(last, want_last, rtol=1e-12, atol=1e-12)
  got = jax.jit(_loss(chunked, argnums))(params, x, h0, lengths)
  want = _loss(_whole, argnums)(params, x, h0, lengths)
  jax.tree_util.tree_map(lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12),
                         got, want)


def test_only_one_output_used():
  """A loss of y alone, or of the final state alone, gets the other's cotangent as a zero."""
  params, x, h0 = _inputs()
  for pick in (0, 1):
    def loss(p, x, h0, apply):
      return jnp.sum(jnp.sin(apply(p, x, h0, None)[pick]))
    chunked = lambda p, x, h, n: time_chunks.over_time_chunks(_rnn_chunk, 3, p, x, h, n)  # noqa
    got = jax.grad(loss, argnums=(0, 1, 2))(params, x, h0, chunked)
    want = jax.grad(loss, argnums=(0, 1, 2))(params, x, h0, _whole)
    jax.tree_util.tree_map(lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12),
                           got, want)


def test_local_lengths():
  lengths = jnp.array([0, 3, 4, 9])
  np.testing.assert_array_equal(time_chunks.local_lengths(lengths, 4, 4), [0, 0, 0, 4])
  np.testing.assert_array_equal(time_chunks.local_lengths(lengths, 0, 4), [0, 3, 4, 4])
  assert time_chunks.local_lengths(None, 4, 4) is None


def test_resolve():
  assert time_chunks.resolve(7, 8) == 7 and time_chunks.resolve(7, 7) == 0
  assert time_chunks.resolve(0, 100) == 0
  size, least = time_chunks.CPU_SIZE, time_chunks.DEFAULT_MIN_CHUNKS * time_chunks.CPU_SIZE
  on_cpu = jax.default_backend() == "cpu"
  assert time_chunks.resolve(None, least) == (size if on_cpu else 0)
  assert time_chunks.resolve(None, least - 1) == 0
