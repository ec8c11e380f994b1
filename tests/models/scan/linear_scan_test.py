"""The parallel linear scans equal the step-by-step recurrence, forward and backward."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models.scan import linear_scan as scan


def _close(got, want, rtol=1e-5):
  """Equal within rtol relative to the largest magnitude of ``want``."""
  got, want = np.asarray(got), np.asarray(want)
  assert np.all(np.isfinite(got))
  scale = max(float(np.abs(want).max()), 1e-30)
  np.testing.assert_allclose(got / scale, want / scale, rtol=0, atol=rtol)


def _inputs(b, l, h, seed=0):
  k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
  a = jax.nn.sigmoid(2.0 * jax.random.normal(k1, (b, l, h)))
  bb = jnp.exp(jax.random.normal(k2, (b, l, h)))  # positive, so the log-space form applies
  h0 = jax.random.normal(k3, (b, h))
  return a, bb, h0


def _loss(fn, a, b, h0, lengths):
  # Linear in h with fixed weights: a loss like sum(sin(h)) would turn float32 rounding of large h
  # (the log-space form keeps log h, ~|log h| * eps relative) into gradient noise.
  h, last = fn(a, b, h0, lengths)
  w = jnp.cos(jnp.arange(h.shape[1] * h.shape[2], dtype=h.dtype)).reshape((1,) + h.shape[1:])
  return jnp.sum(h * w) + jnp.sum(last ** 2)


def _log_form(segment):
  return jax.jit(lambda a, b, h0, lengths: scan.log_linear_scan(
      jnp.log(a), jnp.log(b), h0, lengths, segment))


def _linear_form(segment):
  return jax.jit(functools.partial(scan.linear_scan, segment=segment))


_sequential = jax.jit(scan.sequential_scan)


def _grads(fn, *args, argnums=(0, 1, 2)):
  # Tests compile (jit) rather than run op by op: eager associative scans dispatch hundreds of ops.
  return jax.jit(jax.grad(functools.partial(_loss, fn), argnums=argnums))(*args)


@pytest.mark.parametrize("form,segment", [("linear", 0), ("linear", 4), ("log", 4)])
def test_parallel_equals_sequential_forward_and_gradients(form, segment):
  a, b, h0 = _inputs(3, 23, 5)
  lengths = jnp.array([23, 9, 0])
  fn = (_linear_form if form == "linear" else _log_form)(segment)
  for h_init, lens in ((None, None), (h0, lengths)):
    want = scan.sequential_scan(a, b, h_init, lens)
    got = fn(a, b, h_init, lens)
    _close(got[0], want[0])
    _close(got[1], want[1])
  grads_want = _grads(scan.sequential_scan, a, b, h0, lengths)
  grads_got = _grads(fn, a, b, h0, lengths)
  for got, want in zip(grads_got, grads_want):
    _close(got, want)


@pytest.mark.parametrize("segment", [0, 4])
def test_complex_broadcast_coefficients(segment):
  """The LRU's case: one complex coefficient per channel shared over batch and time."""
  b_, l, h = 3, 19, 4
  k1, k2 = jax.random.split(jax.random.PRNGKey(1))
  bx = jax.lax.complex(*jax.random.normal(k1, (2, b_, l, h)))
  params = (jnp.full((h,), 0.05), jax.random.uniform(k2, (h,), maxval=6.0))
  lengths = jnp.array([19, 3, 11])

  def loss(fn, nu, theta, bx):
    a = jnp.broadcast_to(jnp.exp(jax.lax.complex(-nu, theta)).reshape(1, 1, h), (1, l, h))
    y, last = fn(a, bx, None, lengths)
    return jnp.sum(jnp.real(y) * jnp.imag(y)) + jnp.sum(jnp.abs(last) ** 2)

  want = jax.jit(jax.grad(functools.partial(loss, scan.sequential_scan), argnums=(0, 1, 2)))(
      *params, bx)
  got = jax.jit(jax.grad(functools.partial(loss, _linear_form(segment)), argnums=(0, 1, 2)))(
      *params, bx)
  for g, w in zip(got, want):
    _close(g, w)


def test_paper_parallel_scan_log_equals_sequential():
  a, b, h0 = _inputs(2, 17, 3)
  h0 = jnp.abs(h0)
  log_values = jnp.concatenate([jnp.log(h0)[:, None], jnp.log(b)], axis=1)
  _close(jax.jit(scan.parallel_scan_log)(jnp.log(a), log_values), _sequential(a, b, h0)[0])


def test_length_4096_stable_and_equal_where_cumprod_form_underflows():
  # Forget gates well below 1: the running product of a underflows float32 within ~100 steps.
  a, b, h0 = _inputs(2, 4096, 3, seed=2)
  want, want_last = _sequential(a, b, h0)
  for fn in (_linear_form(scan.SEGMENT), _log_form(scan.SEGMENT)):
    h, last = fn(a, b, h0, None)
    _close(h, want)
    _close(last, want_last)
  # The textbook closed form h = A (h0 + cumsum(b / A)), A = cumprod(a), breaks down.
  big_a = np.cumprod(np.asarray(a), axis=1)
  with np.errstate(all="ignore"):
    naive = big_a * (np.asarray(h0)[:, None] + np.cumsum(np.asarray(b) / big_a, axis=1))
  assert not np.all(np.isfinite(naive))
  grads_want = _grads(scan.sequential_scan, a, b, h0, None, argnums=(0, 1))
  grads_got = _grads(_log_form(scan.SEGMENT), a, b, h0, None, argnums=(0, 1))
  for got, want in zip(grads_got, grads_want):
    _close(got, want)


@pytest.mark.parametrize("form", ["linear", "log"])
def test_padding_changes_nothing_before_the_end(form):
  a, b, h0 = _inputs(2, 13, 3)
  lengths = jnp.array([7, 13])
  fn = (_linear_form if form == "linear" else _log_form)(4)
  h, last = fn(a, b, h0, lengths)
  a2 = a.at[0, 7:].set(0.5)
  b2 = b.at[0, 7:].set(100.0)
  h2, last2 = fn(a2, b2, h0, lengths)
  np.testing.assert_array_equal(np.asarray(h), np.asarray(h2))
  np.testing.assert_array_equal(np.asarray(last), np.asarray(last2))
  assert np.all(np.asarray(h)[0, 7:] == 0.0)
  _close(last[0], _sequential(a[:1, :7], b[:1, :7], h0[:1])[1][0])


def test_jit_equals_no_jit():
  a, b, h0 = _inputs(2, 11, 3)
  lengths = jnp.array([11, 4])
  log_form = lambda a, b, h0, lengths: scan.log_linear_scan(jnp.log(a), jnp.log(b), h0, lengths, 4)
  for fn in (log_form,):  # the layers' default; eager runs are slow, so one form only
    eager = fn(a, b, h0, lengths)
    jitted = jax.jit(fn)(a, b, h0, lengths)
    for e, j in zip(eager, jitted):
      np.testing.assert_allclose(np.asarray(e), np.asarray(j), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("segment", [0, 4])
def test_time_major_equals_sequential_forward_and_gradients(segment):
  """The layers' time-major path, real gates and the LRU's broadcast complex coefficient."""
  a, b, h0 = _inputs(3, 23, 5)
  tm = lambda x: jnp.swapaxes(x, 0, 1)

  def loss_tm(a, b, h0):
    h = tm(scan.linear_scan_time_major(tm(a), tm(b), h0, segment))
    return _loss(lambda *_: (h, h[:, -1]), a, b, h0, None)

  want = jax.jit(jax.value_and_grad(functools.partial(_loss, scan.sequential_scan),
                                    argnums=(0, 1, 2)))(a, b, h0, None)
  got = jax.jit(jax.value_and_grad(loss_tm, argnums=(0, 1, 2)))(a, b, h0)
  jax.tree_util.tree_map(_close, got, want)
  lam = jnp.exp(jax.lax.complex(jnp.full((5,), -0.05), jnp.linspace(0.1, 3.0, 5)))
  bx = jax.lax.complex(b, a)
  complex_loss = lambda fn: lambda lam, bx: jnp.sum(jnp.abs(fn(lam, bx)) ** 2)
  seq = lambda lam, bx: scan.sequential_scan(
      jnp.broadcast_to(lam.reshape(1, 1, 5), (1, 23, 5)), bx)[0]
  par = lambda lam, bx: tm(scan.linear_scan_time_major(lam.reshape(1, 1, 5), tm(bx), None, segment))
  want = jax.jit(jax.value_and_grad(complex_loss(seq), argnums=(0, 1)))(lam, bx)
  got = jax.jit(jax.value_and_grad(complex_loss(par), argnums=(0, 1)))(lam, bx)
  jax.tree_util.tree_map(_close, got, want)


def test_time_major_length_4096_equals_sequential():
  a, b, h0 = _inputs(2, 4096, 3, seed=2)
  tm = lambda x: jnp.swapaxes(x, 0, 1)
  h = jax.jit(lambda a, b, h0: tm(scan.linear_scan_time_major(tm(a), tm(b), h0)))(a, b, h0)
  _close(h, _sequential(a, b, h0)[0])
