"""The mLSTM cell: chunked_form against recurrent_form (outputs, final states and gradients;
chunk sizes that do and do not divide the length; lengths; an initial state), strong gates over
many chunks, and the unstabilised definition on a tiny case."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models.xlstm import mlstm
from tests.models import mixer_checks

B, L, N, K, U = 2, 40, 2, 4, 3


def _inputs(seed, gate_scale=2.0):
  r = np.random.RandomState(seed)
  q, k = r.randn(2, B, L, N, K).astype(np.float32)
  v = r.randn(B, L, N, U).astype(np.float32)
  i = (gate_scale * r.randn(B, L, N)).astype(np.float32)
  f = (gate_scale * r.randn(B, L, N) + 1).astype(np.float32)
  state = mlstm.MLSTMCellState(*(jnp.asarray(r.randn(*s), jnp.float32)
                                 for s in ((B, N, K, U), (B, N, K), (B, N))))
  return q, k, v, i, f, state


def _run(form, args, lengths):
  def loss(*a):
    h, s = form(*a[:5], lengths_B=lengths, state=a[5])
    w = jnp.cos(jnp.arange(h.size, dtype=jnp.float32)).reshape(h.shape)
    return jnp.sum(h * w) + sum(jnp.sum(jnp.sin(x)) for x in s), (h, s)

  grads, out = jax.jit(jax.grad(loss, range(6), has_aux=True))(*args)
  return out, grads


@pytest.mark.parametrize("chunk", [8, 12, 64])  # divides, does not, one chunk (parallel form)
def test_chunked_equals_recurrent_with_gradients(chunk):
  args = _inputs(0)
  lengths = jnp.array([L, 23], jnp.int32)
  got = _run(functools.partial(mlstm.chunked_form, chunk=chunk), args, lengths)
  want = _run(mlstm.recurrent_form, args, lengths)
  mixer_checks.tree_close(got, want, 1e-5)
  np.testing.assert_array_equal(got[0][0][1, 23:], 0.0)


def test_strong_gates_over_many_chunks_stay_finite():
  # Input gates up to exp(40) and forget gates down to sigmoid(-40): the unstabilised states would
  # overflow float32; the stabilised forms agree.
  r = np.random.RandomState(3)
  length = 320
  q, k = r.randn(2, 1, length, N, K).astype(np.float32)
  v = r.randn(1, length, N, U).astype(np.float32)
  i, f = (40 * r.randn(2, 1, length, N)).astype(np.float32)
  got = jax.jit(functools.partial(mlstm.chunked_form, chunk=16))(q, k, v, i, f)
  want = jax.jit(mlstm.recurrent_form)(q, k, v, i, f)
  mixer_checks.tree_close(got, want, 1e-5)


def test_unstabilised_definition():
  # C_t = f C + i k v^T, n_t = f n + i k, h = C^T q / max(|n . q|, 1), k scaled by K^-1/2,
  # computed in float64 without a stabiliser on a case where nothing overflows.
  q, k, v, i, f, _ = _inputs(5, gate_scale=0.5)
  c, n, hs = np.zeros((B, N, K, U)), np.zeros((B, N, K)), []
  for t in range(L):
    ig, fg = np.exp(i[:, t]), 1 / (1 + np.exp(-f[:, t]))
    kt = k[:, t] / np.sqrt(K)
    c = fg[..., None, None] * c + ig[..., None, None] * kt[..., :, None] * v[:, t][..., None, :]
    n = fg[..., None] * n + ig[..., None] * kt
    qn = np.abs(np.sum(n * q[:, t], axis=-1))
    hs.append(np.einsum("bnk,bnku->bnu", q[:, t], c) / np.maximum(qn, 1.0)[..., None])
  h, _ = mlstm.chunked_form(q, k, v, i, f, chunk=16)
  mixer_checks.close(h, np.stack(hs, 1), 1e-5)
