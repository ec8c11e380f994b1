"""The gated delta rule: chunked_form against recurrent_form and both against a float64 PyTorch
loop written from the paper's equation (outputs, final states, gradients), with beta in (0, 2)
(negative eigenvalues) and strong decays."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models.linear_attention import gated_delta_rule
from tests.models import mixer_checks

torch = pytest.importorskip("torch")

B, L, N, K, U = 2, 40, 2, 4, 3


def _inputs(seed, decay_scale=1.0):
  r = np.random.RandomState(seed)
  q, k = r.randn(2, B, L, N, K).astype(np.float32)
  k /= np.linalg.norm(k, axis=-1, keepdims=True)
  v = r.randn(B, L, N, U).astype(np.float32)
  beta = (2 / (1 + np.exp(-r.randn(B, L, N)))).astype(np.float32)  # (0, 2)
  log_a = (-decay_scale * np.abs(r.randn(B, L, N))).astype(np.float32)
  return q, k, v, beta, log_a, r.randn(B, N, K, U).astype(np.float32)


def _loss_weights(shape):
  return np.cos(np.arange(np.prod(shape))).reshape(shape)


def _jax_run(form, args, lengths):
  def loss(*a):
    o, s = form(*a[:5], lengths_B=lengths, state_BNKU=a[5])
    return jnp.sum(o * _loss_weights(o.shape)) + jnp.sum(jnp.sin(s)), (o, s)

  grads, (o, s) = jax.jit(jax.grad(loss, range(6), has_aux=True))(*args)
  return (o, s) + tuple(grads)


def torch_reference(q, k, v, beta, log_a, state, lengths):
  """S_t = a_t (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T, o_t = S_t^T q_t, float64; steps
  at t >= length leave S unchanged and output 0. Returns outputs, state and gradients."""
  ts = [torch.tensor(np.asarray(a, np.float64), requires_grad=True)
        for a in (q, k, v, beta, log_a, state)]
  q_, k_, v_, beta_, log_a_, s = ts
  eye = torch.eye(K, dtype=torch.float64)
  outs = []
  for t in range(L):
    k_t = k_[:, t][..., :, None]  # [B, N, K, 1]
    transition = torch.exp(log_a_[:, t])[..., None, None] * (
        eye - beta_[:, t][..., None, None] * k_t @ k_t.transpose(-1, -2))
    new = transition @ s + beta_[:, t][..., None, None] * k_t @ v_[:, t][..., None, :]
    live = torch.tensor(np.asarray(lengths) > t)[:, None, None, None]
    s = torch.where(live, new, s)
    o_t = (s.transpose(-1, -2) @ q_[:, t][..., None])[..., 0]
    outs.append(torch.where(live[..., 0], o_t, torch.zeros_like(o_t)))
  o = torch.stack(outs, dim=1)
  (o * torch.tensor(_loss_weights(o.shape))).sum().add(torch.sin(s).sum()).backward()
  return (o.detach().numpy(), s.detach().numpy()) + tuple(a.grad.numpy() for a in ts)


@pytest.mark.parametrize("chunk", [8, 12])  # divides the length, does not
def test_chunked_and_recurrent_equal_the_float64_loop(chunk):
  args = _inputs(0)
  lengths = jnp.array([L, 23], jnp.int32)
  want = torch_reference(*args, lengths)
  names = ("outputs", "final state", "dq", "dk", "dv", "dbeta", "dlog_a", "dstate")
  for form in (functools.partial(gated_delta_rule.chunked_form, chunk=chunk),
               gated_delta_rule.recurrent_form):
    got = _jax_run(form, args, lengths)
    for name, g, w in zip(names, got, want):
      mixer_checks.close(g, w, 1e-5)
    np.testing.assert_array_equal(got[0][1, 23:], 0.0)


def test_strong_decays_over_many_chunks_stay_finite_and_equal():
  # Decays as strong as exp(-20) per step over 30 chunks: exp(b_t) alone would underflow to 0 and
  # exp(-b_s) overflow; the chunked form's exponents are all <= 0.
  length = 480
  r = np.random.RandomState(4)
  q, k = r.randn(2, 1, length, N, K).astype(np.float32)
  k /= np.linalg.norm(k, axis=-1, keepdims=True)
  v = r.randn(1, length, N, U).astype(np.float32)
  beta = (1 / (1 + np.exp(-r.randn(1, length, N)))).astype(np.float32)
  log_a = (-20 * r.rand(1, length, N)).astype(np.float32)
  got = jax.jit(functools.partial(gated_delta_rule.chunked_form, chunk=16))(q, k, v, beta, log_a)
  want = jax.jit(gated_delta_rule.recurrent_form)(q, k, v, beta, log_a)
  mixer_checks.tree_close(got, want, 1e-5)


def test_decay_one_is_the_delta_rule():
  from attnlab.models.linear_attention import delta_rule
  q, k, v, beta, _, state = _inputs(2)
  beta = beta / 2
  got = gated_delta_rule.chunked_form(q, k, v, beta, np.zeros_like(beta), state_BNKU=state, chunk=8)
  want = delta_rule.chunked_form(q, k, v, beta, state_BNKU=state, chunk=8)
  mixer_checks.tree_close(got, want, 1e-5)
