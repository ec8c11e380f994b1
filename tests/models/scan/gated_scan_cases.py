"""The tests every GatedScan layer (minGRU, minLSTM) passes: each form equals the paper's equations
run step by step in float64 numpy, forward and backward; padding, jit, bf16 and bad inputs.

A test module imports these (``from tests.models.scan.gated_scan_cases import *``) and sets ``LAYER``
(the layer class) and ``reference_gates(k) -> (a, w)``: the paper's gates from the float64
projections k, so that h_t = a_t h_{t-1} + w_t g(k_h) with k_h the last H columns.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

__all__ = ["B", "L", "D", "H", "sigmoid", "layer", "setup",
           "test_matches_reference_forward_and_gradients",
           "test_length_4096_log_space_equals_sequential", "test_padding_changes_nothing_before_the_end",
           "test_jit_equals_no_jit", "test_bf16_compute_close_to_float32", "test_bad_inputs_raise"]

B, L, D, H = 3, 13, 4, 5
# The forms a GatedScan computes: the fast (a, b) scan, the fast scan in log space (the paper's),
# and the step-by-step reference.
FORMS = {"linear": {}, "log": dict(log_space=True), "sequential": dict(impl="reference")}


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def reference(params, x, h0, lengths, reference_gates):
  """The paper's sequential layer in float64 numpy, independent of attnlab's scan code."""
  p = {k: np.asarray(v, np.float64) for k, v in params["params"].items()}
  k = np.asarray(x, np.float64) @ p["kernel"] + p["bias"]
  a, w = reference_gates(k)
  kh = k[..., -H:]
  cand = np.where(kh >= 0, kh + 0.5, sigmoid(kh))
  h = np.array(h0, np.float64)
  ys = np.zeros(k.shape[:2] + (H,))
  for t in range(x.shape[1]):
    live = (t < np.asarray(lengths))[:, None]
    h = np.where(live, a[:, t] * h + w[:, t] * cand[:, t], h)
    ys[:, t] = np.where(live, h, 0.0)
  return ys, h


def _close(got, want, rtol=1e-5):
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  assert np.all(np.isfinite(got))
  scale = max(np.abs(want).max(), 1e-30)
  np.testing.assert_allclose(got / scale, want / scale, rtol=0, atol=rtol)


@pytest.fixture(scope="module")
def layer(request):
  """The layer class the importing test module runs these tests for (its LAYER)."""
  return request.module.LAYER


@pytest.fixture(scope="module")
def setup(request, layer):
  kx, kh, kp = jax.random.split(jax.random.PRNGKey(0), 3)
  x = 2.0 * jax.random.normal(kx, (B, L, D))
  h0 = jax.random.uniform(kh, (B, H))
  params = jax.jit(layer(H).init)(kp, x)
  # A non-zero bias so that both branches of g and every gate range are exercised.
  params["params"]["bias"] = jax.random.normal(kp, (layer.num * H,))
  return x, h0, jnp.array([L, 6, 0]), params


def _loss(layer, mode, segment=4, time_chunk=None):
  def loss(params, x, h0, lengths):
    y, last = layer(H, **FORMS[mode], segment=segment, time_chunk=time_chunk).apply(params, x, lengths, h0)
    w = jnp.cos(jnp.arange(y.size, dtype=y.dtype)).reshape(y.shape)
    return jnp.sum(y * w) + jnp.sum(last ** 2)
  return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))


# time_chunk 4: L = 13 runs as three chunks of 4 and one of 1 (time_chunks.py), lengths ending in
# the second chunk and before the first step.
@pytest.mark.parametrize("mode,segment,time_chunk", [
    ("log", 4, None), ("log", 0, None), ("linear", 4, 0), ("linear", 0, 0), ("linear", 4, 4),
    ("sequential", 0, None)])
def test_matches_reference_forward_and_gradients(request, layer, setup, mode, segment, time_chunk):
  x, h0, lengths, params = setup
  model = layer(H, **FORMS[mode], segment=segment, time_chunk=time_chunk)
  y, last = jax.jit(model.apply)(params, x, lengths, h0)
  want_y, want_last = reference(params, x, h0, lengths, request.module.reference_gates)
  _close(y, want_y)
  _close(last, want_last)
  if mode != "sequential":
    got = _loss(layer, mode, segment, time_chunk)(params, x, h0, lengths)
    want = _loss(layer, "sequential")(params, x, h0, lengths)
    jax.tree_util.tree_map(_close, got, want)


def test_length_4096_log_space_equals_sequential(layer):
  x = 3.0 * jax.random.normal(jax.random.PRNGKey(1), (2, 4096, 3))
  params = jax.jit(layer(4).init)(jax.random.PRNGKey(2), x[:, :4])
  out = {}
  for mode in ("log", "sequential"):
    fn = jax.jit(jax.value_and_grad(
        lambda p, x, m=mode: jnp.sum(layer(4, **FORMS[m]).apply(p, x)[0] * jnp.cos(x[..., :1])),
        argnums=(0, 1)))
    out[mode] = fn(params, x)
  jax.tree_util.tree_map(_close, out["log"], out["sequential"])


@pytest.mark.parametrize("time_chunk", [0, 4])
def test_padding_changes_nothing_before_the_end(layer, setup, time_chunk):
  x, h0, lengths, params = setup
  apply = jax.jit(layer(H, segment=4, time_chunk=time_chunk).apply)
  y, last = apply(params, x, lengths, h0)
  y2, last2 = apply(params, x.at[1, 6:].set(7.0), lengths, h0)
  np.testing.assert_array_equal(np.asarray(y), np.asarray(y2))
  np.testing.assert_array_equal(np.asarray(last), np.asarray(last2))
  np.testing.assert_array_equal(np.asarray(last[2]), np.asarray(h0[2]))  # length 0 keeps h0


def test_jit_equals_no_jit(layer, setup):
  x, h0, lengths, params = setup
  model = layer(H, segment=4)
  eager = model.apply(params, x, lengths, h0)
  jitted = jax.jit(model.apply)(params, x, lengths, h0)
  jax.tree_util.tree_map(lambda e, j: np.testing.assert_allclose(e, j, rtol=1e-6, atol=1e-6),
                         eager, jitted)


@pytest.mark.parametrize("time_chunk", [0, 4])
def test_bf16_compute_close_to_float32(layer, setup, time_chunk):
  x, h0, lengths, params = setup
  y32, _ = jax.jit(layer(H).apply)(params, x, lengths, h0)
  model = layer(H, dtype=jnp.bfloat16, time_chunk=time_chunk)
  y16, last16 = jax.jit(model.apply)(params, x, lengths, h0)
  assert y16.dtype == jnp.bfloat16 and last16.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(y16, np.float32), np.asarray(y32), rtol=0.05, atol=0.05)
  assert_bf16_grads_close(model, layer(H), params, x, lengths, h0)


def assert_bf16_grads_close(model16, model32, params, x, lengths, h0):
  """The bf16-compute layer's parameter gradients of sum(y^2) are float32 and within 0.05 of the
  float32 layer's, relative to the largest of each (the scan layers' bf16 tests)."""
  grad = lambda m: jax.jit(jax.grad(  # noqa: E731
      lambda p: jnp.sum(m.apply(p, x, lengths, h0)[0].astype(jnp.float32) ** 2)))(params)
  g16, g32 = grad(model16), grad(model32)
  for a, b in zip(jax.tree_util.tree_leaves(g16), jax.tree_util.tree_leaves(g32)):
    assert a.dtype == jnp.float32
    np.testing.assert_allclose(a / np.abs(b).max(), b / np.abs(b).max(), rtol=0, atol=0.05)


@pytest.mark.parametrize("change,match", [
    (dict(x=jnp.zeros((B, L))), "rank 3"),
    (dict(x=jnp.zeros((B, L, D + 1))), "feature size 5"),
    (dict(lengths=jnp.array([L, -1, 0])), "lengths must lie in"),
    (dict(lengths=jnp.array([L + 1, 1, 0])), "lengths must lie in"),
    (dict(lengths=jnp.array([1, 1])), "lengths must have shape"),
    (dict(h0=jnp.zeros((B, H + 1))), "initial state"),
    (dict(impl="log"), r"impl='log'; allowed: \('fast', 'reference'\)"),
])
def test_bad_inputs_raise(layer, setup, change, match):
  x, h0, lengths, params = setup
  with pytest.raises(ValueError, match=match):
    layer(H, impl=change.get("impl", "fast"), log_space=True).apply(
        params, change.get("x", x), change.get("lengths", lengths), change.get("h0", h0))
