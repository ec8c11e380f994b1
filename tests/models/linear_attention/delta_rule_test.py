"""The delta rule: chunked_form against recurrent_form (outputs, final states, gradients) and the
exact memory of orthonormal keys with beta = 1."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models.linear_attention import delta_rule

B, L, N, K, U = 2, 40, 2, 4, 3


def _inputs(seed):
  r = np.random.RandomState(seed)
  q, k = r.randn(2, B, L, N, K).astype(np.float32)
  k /= np.linalg.norm(k, axis=-1, keepdims=True)  # unit keys, as the layer gives
  v = r.randn(B, L, N, U).astype(np.float32)
  beta = (1 / (1 + np.exp(-r.randn(B, L, N)))).astype(np.float32)
  return q, k, v, beta, r.randn(B, N, K, U).astype(np.float32)


def _run_with_grads(form, q, k, v, beta, state, lengths):
  r = np.random.RandomState(1)
  w_o, w_s = r.randn(B, L, N, U).astype(np.float32), r.randn(*state.shape).astype(np.float32)

  def loss(*args):
    o, s = form(*args[:4], lengths_B=lengths, state_BNKU=args[4])
    return jnp.sum(o * w_o) + jnp.sum(s * w_s), (o, s)

  grads, (o, s) = jax.jit(jax.grad(loss, range(5), has_aux=True))(q, k, v, beta, state)
  return (o, s) + tuple(grads)


@pytest.mark.parametrize("chunk", [8, 12])  # divides the length, does not
def test_chunked_equals_recurrent_with_gradients(chunk):
  args = _inputs(0)
  lengths = jnp.array([L, 23], jnp.int32)
  got = _run_with_grads(functools.partial(delta_rule.chunked_form, chunk=chunk), *args, lengths)
  want = _run_with_grads(delta_rule.recurrent_form, *args, lengths)
  names = ("outputs", "final state", "dq", "dk", "dv", "dbeta", "dstate")
  for name, g, w in zip(names, got, want):
    np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5, err_msg=name)
  np.testing.assert_array_equal(got[0][1, 23:], 0.0)


def test_orthonormal_keys_with_beta_one_are_an_exact_memory():
  # Writing v_i under orthonormal k_i with beta = 1 replaces whatever was stored under k_i, so
  # querying k_i afterwards returns the last v written there, here after overwriting key 0.
  keys = np.linalg.qr(np.random.RandomState(2).randn(K, K))[0].T.astype(np.float32)  # rows
  order = [0, 1, 2, 0, 3]
  k = keys[order][None, :, None]  # [1, 5, 1, K]
  v = np.random.RandomState(3).randn(1, 5, 1, U).astype(np.float32)
  q = keys[[1, 0, 2, 0, 3]][None, :, None]  # read key 1, 0, 2, 0 (rewritten), 3 at each step
  beta = np.ones((1, 5, 1), np.float32)
  o, state = jax.jit(functools.partial(delta_rule.chunked_form, chunk=2))(q, k, v, beta)
  # Step t reads after writing step t: key 1 is unwritten at t = 0; key 0 holds v_0, then v_3.
  want = np.stack([np.zeros(U), v[0, 0, 0], v[0, 2, 0], v[0, 3, 0], v[0, 4, 0]])
  np.testing.assert_allclose(o[0, :, 0], want, atol=1e-5)
  np.testing.assert_allclose(np.einsum("k,ku->u", keys[0], state[0, 0]), v[0, 3, 0], atol=1e-5)


@pytest.mark.parametrize("t", [1, 3, 8, 13, 64])
def test_unit_lower_inverse_is_numpys_inverse(t):
  m = np.tril(np.random.default_rng(t).normal(size=(3, 2, t, t)), -1) * 0.5 + np.eye(t)
  got = delta_rule.unit_lower_inverse(jnp.asarray(m, jnp.float32))
  want = np.linalg.inv(m)
  np.testing.assert_allclose(got, want, atol=1e-5 * max(1.0, np.abs(want).max()))


def test_gradients_run_repeatedly():
  # XLA:CPU's triangular solve differentiated in both operands could hang on a second call.
  q, k, v, beta = (jax.random.normal(jax.random.key(i), s) for i, s in
                   enumerate([(2, 128, 4, 16)] * 3 + [(2, 128, 4)]))
  k = k / jnp.linalg.norm(k, axis=-1, keepdims=True)
  grad = jax.jit(jax.grad(lambda *a: jnp.sum(delta_rule.chunked_form(
      *a[:3], jax.nn.sigmoid(a[3]), chunk=32)[0]), argnums=(0, 1, 2, 3)))
  for _ in range(3):
    jax.block_until_ready(grad(q, k, v, beta))
