"""SSD: chunked_form against recurrent_form and both against a float64 PyTorch loop (outputs,
final states, gradients), with positive and negative decays, and strong decays over many chunks."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models.mamba2 import ssd
from tests.models import mixer_checks

torch = pytest.importorskip("torch")

B, L, N, K, U = 2, 40, 3, 4, 5


def _inputs(seed):
  r = np.random.RandomState(seed)
  q, k = r.randn(2, B, L, K).astype(np.float32)
  v = r.randn(B, L, N, U).astype(np.float32)
  dt_a = (-0.7 * np.abs(r.randn(B, L, N))).astype(np.float32)
  return q, k, v, dt_a, r.randn(B, N, K, U).astype(np.float32)


def _weights(shape):
  return np.cos(np.arange(np.prod(shape))).reshape(shape)


def _fast(negative, chunk, q, k, v, dt_a, s0, lengths):
  log_a, neg = ssd.log_decay(dt_a, negative)
  return ssd.chunked_form(q, k, v, log_a, neg, lengths_B=lengths, state_BNKU=s0, chunk=chunk)


def _reference(negative, q, k, v, dt_a, s0, lengths):
  return ssd.recurrent_form(q, k, v, ssd.decay(dt_a, negative), lengths_B=lengths, state_BNKU=s0)


def _jax_run(form, args, lengths):
  def loss(*a):
    o, s = form(*a, lengths)
    return jnp.sum(o * _weights(o.shape)) + jnp.sum(jnp.sin(s)), (o, s)

  grads, (o, s) = jax.jit(jax.grad(loss, range(5), has_aux=True))(*args)
  return (o, s) + tuple(grads)


def torch_reference(negative, q, k, v, dt_a, state, lengths):
  """S_t = a_t S_{t-1} + k_t v_t^T, o_t = S_t^T q_t in float64, a_t = exp(dt A) or 2 exp(dt A) - 1;
  steps past each length change nothing and output 0. Outputs, state and gradients."""
  ts = [torch.tensor(np.asarray(a, np.float64), requires_grad=True) for a in (q, k, v, dt_a, state)]
  q_, k_, v_, dt_a_, s = ts
  a = torch.exp(dt_a_)
  a = 2 * a - 1 if negative else a
  outs = []
  for t in range(L):
    new = a[:, t][..., None, None] * s + k_[:, t][:, None, :, None] * v_[:, t][:, :, None, :]
    live = torch.tensor(np.asarray(lengths) > t)[:, None, None, None]
    s = torch.where(live, new, s)
    o_t = torch.einsum("bk,bnku->bnu", q_[:, t], s)
    outs.append(torch.where(live[..., 0], o_t, torch.zeros_like(o_t)))
  o = torch.stack(outs, dim=1)
  ((o * torch.tensor(_weights(o.shape))).sum() + torch.sin(s).sum()).backward()
  return (o.detach().numpy(), s.detach().numpy()) + tuple(a.grad.numpy() for a in ts)


@pytest.mark.parametrize("negative", [False, True])
def test_chunked_and_recurrent_equal_the_float64_loop(negative):
  args = _inputs(0)
  lengths = jnp.array([L, 23], jnp.int32)
  want = torch_reference(negative, *args, lengths)
  names = ("outputs", "final state", "dq", "dk", "dv", "d(dt A)", "dstate")
  for form in (functools.partial(_fast, negative, 12), functools.partial(_reference, negative)):
    for name, g, w in zip(names, _jax_run(form, args, lengths), want):
      mixer_checks.close(g, w, 1e-5)


def test_negative_decays_flip_the_state():
  # dt A = -log 2 gives a = 2 * 0.5 - 1 = 0 (the floor); dt A -> 0 gives a -> 1; very negative
  # dt A gives a -> -1: the state's sign alternates with each such step.
  q = np.ones((1, 4, 1), np.float32)
  k = np.array([[[1.0], [0.0], [0.0], [0.0]]], np.float32)
  v = np.ones((1, 4, 1, 1), np.float32)
  dt_a = np.full((1, 4, 1), -30.0, np.float32)
  o, _ = _fast(True, 2, q, k, v, dt_a, None, None)
  np.testing.assert_allclose(o[0, :, 0, 0], [1.0, -1.0, 1.0, -1.0], atol=1e-6)


def test_strong_decays_over_many_chunks_stay_finite_and_equal():
  length = 480
  r = np.random.RandomState(4)
  q, k = r.randn(2, 1, length, K).astype(np.float32)
  v = r.randn(1, length, N, U).astype(np.float32)
  dt_a = (-20 * r.rand(1, length, N)).astype(np.float32)
  for negative in (False, True):
    got = jax.jit(functools.partial(_fast, negative, 16))(q, k, v, dt_a, None, None)
    want = jax.jit(functools.partial(_reference, negative))(q, k, v, dt_a, None, None)
    mixer_checks.tree_close(got, want, 1e-5)
