"""chunked_form against recurrent_form (the step-by-step definition) and against plain masked
einsum products: outputs, final states, gradients, lengths, long sequences with strong decays."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models.linear_attention import chunked, recurrent

B, L, N, K, U = 2, 40, 2, 4, 3
LENGTHS = np.array([40, 23], np.int32)
# Jitted once per set of static arguments (eager runs op by op: much slower here).
CHUNKED = jax.jit(chunked.chunked_form, static_argnames=("normalize", "chunk", "dtype"))


def _inputs(seed, decay, normalize, length=L, strong=False, batch=B):
  """q, k, v, log_a (None, [B, L, N] or [B, L, N, K]) and an initial state."""
  r = np.random.RandomState(seed)
  q, k = 0.5 * r.randn(2, batch, length, N, K).astype(np.float32)
  if normalize:  # positive features, as the normaliser needs
    q, k = np.exp(q), np.exp(k)
  v = r.randn(batch, length, N, U).astype(np.float32)
  shape = {"none": None, "head": (batch, length, N), "feature": (batch, length, N, K)}[decay]
  log_a = None
  if shape:
    # strong: per-step decays down to e^-40 (their products underflow after a few steps).
    log_a = (-np.exp(3 * r.randn(*shape)) if strong else -np.abs(0.3 * r.randn(*shape)))
    log_a = np.maximum(log_a, -40.0).astype(np.float32)
  state = np.abs(r.randn(batch, N, K, U + normalize)).astype(np.float32)
  return q, k, v, log_a, state


def _loss_and_grads(form, q, k, v, log_a, state, lengths, normalize):
  """(outputs, final state) and the gradients of a random projection of both w.r.t. all inputs."""
  r = np.random.RandomState(1)
  w_o = r.randn(*q.shape[:3], U).astype(np.float32)
  w_s = r.randn(*state.shape).astype(np.float32)

  def loss(q, k, v, log_a, state):
    o, s = form(q, k, v, log_a, lengths_B=lengths, state_BNKU=state, normalize=normalize)
    return jnp.sum(o * w_o) + jnp.sum(s * w_s), (o, s)

  argnums = (0, 1, 2, 4) if log_a is None else (0, 1, 2, 3, 4)
  grads, (o, s) = jax.jit(jax.grad(loss, argnums, has_aux=True))(q, k, v, log_a, state)
  return o, s, grads


@pytest.mark.parametrize("decay, chunk, normalize", [
    ("none", 12, True),  # chunks that do not divide the length: the last one is padded
    ("head", 8, False),  # chunks that do
    ("feature", 12, False),  # sub-blocks of 4: both intra-chunk paths
    ("feature", 64, True),  # one chunk of 40 (sub-blocks of 8)
])
def test_chunked_equals_recurrent_with_gradients(decay, chunk, normalize):
  q, k, v, log_a, state = _inputs(0, decay, normalize)
  lengths = jnp.asarray(LENGTHS)
  want = _loss_and_grads(recurrent.recurrent_form, q, k, v, log_a, state, lengths, normalize)
  got = _loss_and_grads(functools.partial(chunked.chunked_form, chunk=chunk), q, k, v, log_a,
                        state, lengths, normalize)
  for name, g, w in zip(("outputs", "final state"), got[:2], want[:2]):
    np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5, err_msg=name)
  for i, (g, w) in enumerate(zip(got[2], want[2])):
    np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5, err_msg=f"gradient {i}")


def test_padding_and_initial_state_semantics():
  # The final state is the state at length - 1; length 0 keeps the initial state; zeros past ends.
  q, k, v, log_a, state = _inputs(2, "feature", False)
  lengths = jnp.array([0, 17], jnp.int32)
  o, s = CHUNKED(q, k, v, log_a, lengths_B=lengths, state_BNKU=state, chunk=8)
  np.testing.assert_array_equal(o[0], 0.0)
  np.testing.assert_array_equal(o[1, 17:], 0.0)
  np.testing.assert_allclose(s[0], state[0], rtol=1e-6)
  o1, s1 = CHUNKED(q[1:, :17], k[1:, :17], v[1:, :17], log_a[1:, :17],
                                state_BNKU=state[1:], chunk=8)
  np.testing.assert_allclose(o[1:, :17], o1, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(s[1:], s1, rtol=1e-5, atol=1e-6)


def _masked_product(q, k, v, log_a):
  """sum_{s <= t} (q_t * exp(b_t - b_s)) . k_s v_s with b the cumulative log decay: an [L, L, K]
  tensor of decays (the parallel form; RetNet's Q K^T * D with D_ts = gamma^(t-s) per head)."""
  length = q.shape[1]
  causal = np.tril(np.ones((length, length), bool))[None, :, :, None, None]
  if log_a is None:
    decay = np.where(causal, 1.0, 0.0)
  else:
    b = np.cumsum(log_a.astype(np.float64), axis=1)
    b = b if b.ndim == 4 else b[..., None]
    decay = np.exp(np.where(causal, b[:, :, None] - b[:, None, :], -np.inf))  # [B, L, S, N, K]
  return np.einsum("btnk,bsnk,btsnk,bsnu->btnu", q, k, decay, v)


@pytest.mark.parametrize("decay", ["none", "head", "feature"])
def test_chunked_equals_the_masked_product(decay):
  # decay "none": linear attention without a map or normaliser is (Q K^T * causal) V.
  q, k, v, log_a, _ = _inputs(3, decay, False)
  o, _ = CHUNKED(q, k, v, log_a, chunk=12)
  np.testing.assert_allclose(o, _masked_product(q, k, v, log_a), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("decay", ["head", "feature"])
def test_length_4096_strong_decays_stay_finite_and_exact(decay):
  length = 4096
  q, k, v, log_a, state = _inputs(4, decay, False, length=length, strong=True, batch=1)
  # The decays are strong enough that the 1 / cumprod form would overflow float32.
  with np.errstate(over="ignore"):
    assert not np.all(np.isfinite(np.exp(-np.cumsum(log_a, axis=1, dtype=np.float32))))
  lengths = jnp.array([length - 5], jnp.int32)
  o, s, grads = _loss_and_grads(functools.partial(chunked.chunked_form, chunk=64), q, k, v,
                                log_a, state, lengths, False)
  o_ref, s_ref, grads_ref = _loss_and_grads(recurrent.recurrent_form, q, k, v, log_a, state,
                                            lengths, False)
  for x in (o, s, *grads):
    assert np.all(np.isfinite(x))
  # Same float32 sums in a different order: the chunked form adds up to 64 decayed terms per
  # product where the recurrence adds one per step, so the roundings differ slightly more.
  np.testing.assert_allclose(o, o_ref, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(s, s_ref, rtol=1e-4, atol=1e-4)
  for i, (g, w) in enumerate(zip(grads, grads_ref)):
    np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4, err_msg=f"gradient {i}")


def test_bfloat16_matmuls_stay_close():
  q, k, v, log_a, state = _inputs(5, "feature", False)
  want, _ = CHUNKED(q, k, v, log_a, state_BNKU=state, chunk=12)
  got, final = CHUNKED(q, k, v, log_a, state_BNKU=state, chunk=12, dtype=jnp.bfloat16)
  assert got.dtype == final.dtype == jnp.float32
  np.testing.assert_allclose(got, want, rtol=0.05, atol=0.05 * np.abs(want).max())
