"""LRU: ring initialisation; the parallel scan equals the paper's recurrence run step by step."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models.scan.lru import LRU, eigenvalues
from tests.models.scan.gated_scan_cases import assert_bf16_grads_close

B, L, D, P, H = 3, 13, 4, 6, 5


def _reference(params, x, h0, lengths):
  """The paper's LRU step by step in complex128 numpy, independent of attnlab's scan code."""
  p = {k: np.asarray(v, np.float64) for k, v in params["params"].items()}
  lam = np.exp(-np.exp(p["nu_log"]) + 1j * np.exp(p["theta_log"]))
  b = (p["B_re"] + 1j * p["B_im"]) * np.exp(p["gamma_log"])[None]
  c = p["C_re"] + 1j * p["C_im"]
  x = np.asarray(x, np.float64)
  h = np.array(h0, np.complex128)
  ys = np.zeros(x.shape[:2] + (H,))
  for t in range(x.shape[1]):
    live = (t < np.asarray(lengths))[:, None]
    h = np.where(live, lam[None] * h + x[:, t] @ b, h)
    ys[:, t] = np.where(live, np.real(h @ c) + x[:, t] @ p["D"], 0.0)
  return ys, h


def _close(got, want, rtol=1e-5):
  got, want = np.asarray(got), np.asarray(want)
  assert np.all(np.isfinite(got))
  scale = max(np.abs(want).max(), 1e-30)
  np.testing.assert_allclose(got / scale, want / scale, rtol=0, atol=rtol)


@pytest.fixture(scope="module")
def setup():
  kx, kh, kp = jax.random.split(jax.random.PRNGKey(0), 3)
  x = jax.random.normal(kx, (B, L, D))
  h0 = jax.lax.complex(*jax.random.normal(kh, (2, B, P)))
  params = jax.jit(LRU(H, P, r_min=0.5, r_max=0.95).init)(kp, x)
  return x, h0, jnp.array([L, 6, 0]), params


def test_ring_initialisation():
  r_min, r_max, max_phase = 0.4, 0.8, math.pi / 4
  params = jax.jit(LRU(3, 500, r_min=r_min, r_max=r_max, max_phase=max_phase).init)(
      jax.random.PRNGKey(1), jnp.zeros((1, 2, 2)))["params"]
  lam = np.asarray(eigenvalues(params["nu_log"], params["theta_log"]))
  radius = np.abs(lam)
  assert radius.min() >= r_min - 1e-6 and radius.max() <= r_max + 1e-6
  # Uniform in area: |lambda|^2 is uniform on [r_min^2, r_max^2], so its mean is the midpoint.
  assert abs(np.mean(radius ** 2) - (r_min ** 2 + r_max ** 2) / 2) < 0.02
  phase = np.exp(np.asarray(params["theta_log"]))
  assert phase.min() >= 0.0 and phase.max() <= max_phase
  np.testing.assert_allclose(np.exp(np.asarray(params["gamma_log"])), np.sqrt(1 - radius ** 2),
                             rtol=1e-5)


IMPLS = {"linear": "fast", "sequential": "reference"}  # the complex scan, step by step


def _loss(mode, segment=4, time_chunk=None):
  def loss(params, x, h0, lengths):
    y, last = LRU(H, P, impl=IMPLS[mode], segment=segment, time_chunk=time_chunk).apply(
        params, x, lengths, h0)
    w = jnp.cos(jnp.arange(y.size, dtype=y.dtype)).reshape(y.shape)
    return jnp.sum(y * w) + jnp.sum(jnp.real(last) * jnp.imag(last))
  return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))


# time_chunk 4: L = 13 runs as three chunks of 4 and one of 1 (time_chunks.py).
@pytest.mark.parametrize("mode,segment,time_chunk", [
    ("linear", 4, 0), ("linear", 4, 4), ("sequential", 0, None)])
def test_matches_reference_forward_and_gradients(setup, mode, segment, time_chunk):
  x, h0, lengths, params = setup
  model = LRU(H, P, impl=IMPLS[mode], segment=segment, time_chunk=time_chunk)
  y, last = jax.jit(model.apply)(params, x, lengths, h0)
  want_y, want_last = _reference(params, x, h0, lengths)
  _close(y, want_y)
  _close(last, want_last)
  if mode != "sequential":
    got = _loss(mode, segment, time_chunk)(params, x, h0, lengths)
    want = _loss("sequential")(params, x, h0, lengths)
    jax.tree_util.tree_map(_close, got, want)


def test_length_4096_equals_sequential():
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 4096, 3))
  params = jax.jit(LRU(4, 3, r_min=0.99, r_max=0.9999).init)(jax.random.PRNGKey(2), x[:, :4])
  out = {}
  for mode in ("linear", "sequential"):
    fn = jax.jit(jax.value_and_grad(
        lambda p, x, m=mode: jnp.sum(LRU(4, 3, impl=IMPLS[m]).apply(p, x)[0] * jnp.cos(x[..., :1])),
        argnums=(0, 1)))
    out[mode] = fn(params, x)
  jax.tree_util.tree_map(_close, out["linear"], out["sequential"])


@pytest.mark.parametrize("time_chunk", [0, 4])
def test_padding_changes_nothing_before_the_end(setup, time_chunk):
  x, h0, lengths, params = setup
  apply = jax.jit(LRU(H, P, segment=4, time_chunk=time_chunk).apply)
  y, last = apply(params, x, lengths, h0)
  y2, last2 = apply(params, x.at[1, 6:].set(7.0), lengths, h0)
  np.testing.assert_array_equal(np.asarray(y), np.asarray(y2))
  np.testing.assert_array_equal(np.asarray(last), np.asarray(last2))
  assert np.all(np.asarray(y)[1, 6:] == 0.0)
  np.testing.assert_array_equal(np.asarray(last[2]), np.asarray(h0[2]))  # length 0 keeps h0


def test_jit_equals_no_jit(setup):
  x, h0, lengths, params = setup
  model = LRU(H, P, segment=4)
  eager = model.apply(params, x, lengths, h0)
  jitted = jax.jit(model.apply)(params, x, lengths, h0)
  jax.tree_util.tree_map(lambda e, j: np.testing.assert_allclose(e, j, rtol=1e-6, atol=1e-6),
                         eager, jitted)


@pytest.mark.parametrize("time_chunk", [0, 4])
def test_bf16_compute_close_to_float32(setup, time_chunk):
  x, h0, lengths, params = setup
  y32, _ = jax.jit(LRU(H, P).apply)(params, x, lengths, h0)
  model = LRU(H, P, dtype=jnp.bfloat16, time_chunk=time_chunk)
  y16, last16 = jax.jit(model.apply)(params, x, lengths, h0)
  assert y16.dtype == jnp.bfloat16 and last16.dtype == jnp.complex64
  scale = float(jnp.abs(y32).max())
  np.testing.assert_allclose(np.asarray(y16, np.float32) / scale, np.asarray(y32) / scale,
                             rtol=0, atol=0.03)
  assert_bf16_grads_close(model, LRU(H, P), params, x, lengths, h0)


@pytest.mark.parametrize("fields,change,match", [
    ({}, dict(x=jnp.zeros((B, L))), "rank 3"),
    ({}, dict(x=jnp.zeros((B, L, D + 1))), "feature size 5"),
    ({}, dict(lengths=jnp.array([L, -1, 0])), "lengths must lie in"),
    ({}, dict(lengths=jnp.array([L + 1, 1, 0])), "lengths must lie in"),
    ({}, dict(h0=jnp.zeros((B, P + 1), jnp.complex64)), "initial state"),
    (dict(r_min=0.9, r_max=0.5), {}, "r_min < r_max"),
    (dict(r_min=-0.1), {}, "r_min < r_max"),
    (dict(r_max=1.5), {}, "r_min < r_max"),
    (dict(max_phase=0.0), {}, "max_phase"),
    (dict(d_state=0), {}, "d_state"),
    (dict(impl="log"), {}, r"impl='log'; allowed"),
])
def test_bad_inputs_raise(setup, fields, change, match):
  x, h0, lengths, params = setup
  kwargs = {"hidden_size": H, "d_state": P, **fields}
  with pytest.raises(ValueError, match=match):
    LRU(**kwargs).apply(params, change.get("x", x), change.get("lengths", lengths),
                        change.get("h0", h0))
