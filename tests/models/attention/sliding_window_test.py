"""Sliding-window attention: every implementation equals naive attention under a band mask."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models.attention import chunked as ca
from attnlab.models.attention import dot_product as attention

B, N, K = 2, 4, 8
# These programs are tiny: compile time dominates, so skip the slow LLVM optimisation passes.
jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


def _inputs(l, s, g, seed=0):
  """q, k, v, bias from NumPy: eager jax.random would compile a program per shape."""
  rng = np.random.default_rng(seed)
  shapes = ((B, l, N, K), (B, s, g, K), (B, s, g, K), (N, l, s))
  return tuple(jnp.asarray(rng.standard_normal(shape, np.float32)) for shape in shapes)


def _band(l, s, window):
  """[1, 1, L, S] from positions: query i sits at p = i + (S - L) and sees keys (p - window, p]."""
  pos = np.arange(l)[:, None] + (s - l)
  key = np.arange(s)[None, :]
  return ((key <= pos) & (key > pos - window))[None, None]


def _grads(fn, q, k, v, bias):
  def loss(q, k, v, bias):
    out = fn(q, k, v, bias)
    return jnp.sum(out * jnp.sin(jnp.arange(out.size, dtype=out.dtype).reshape(out.shape))), out
  argnums = (0, 1, 2) if bias is None else (0, 1, 2, 3)
  return jit(jax.grad(loss, argnums=argnums, has_aux=True))(q, k, v, bias)


def _padding(s):
  return (np.arange(s)[None, :] < np.array([s, s // 2])[:, None])[:, None, None, :]


def _case(l, s, g, bias_kind, padded, seed):
  q, k, v, bias_full = _inputs(l, s, g, seed)
  bias = {None: None, "full": bias_full, "heads": np.asarray(bias_full)[:, :1, :1]}[bias_kind]
  return q, k, v, bias, _padding(s) if padded else None


@functools.cache
def _band_reference(l, s, g, window, bias_kind, padded, seed):
  """Naive attention (no causal flag, no window) under the band mask: (gradients, output)."""
  q, k, v, bias, mask = _case(l, s, g, bias_kind, padded, seed)
  allowed = _band(l, s, window) if mask is None else _band(l, s, window) & mask
  return _grads(lambda q, k, v, b: attention.naive_attention(q, k, v, mask=allowed, bias=b),
                q, k, v, bias)


def _assert_matches_band_reference(fn, l, s, g, window, *, bias_kind=None, padded=False, seed=0):
  q, k, v, bias, mask = _case(l, s, g, bias_kind, padded, seed)
  g_new, out_new = _grads(lambda q, k, v, b: fn(q, k, v, b, mask), q, k, v, bias)
  g_ref, out_ref = _band_reference(l, s, g, window, bias_kind, padded, seed)
  np.testing.assert_allclose(out_new, out_ref, atol=1e-5)
  for a, b in zip(g_new, g_ref):
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, atol=1e-5)


# L = S (jax's own local window for xla); the causal offset both ways (L < S: the last L positions;
# L > S: early rows see nothing; an explicit mask for xla); GQA and MQA; key padding with a bias.
# The chunked kernel's blocks are tested below.
@pytest.mark.parametrize("impl", ["naive", "xla"])
@pytest.mark.parametrize("l, s, g, window, padded", [
    (9, 9, 4, 3, False),
    (5, 12, 2, 4, True),
    (11, 7, 1, 2, False),
])
def test_implementations_match_band_mask(impl, l, s, g, window, padded):
  _assert_matches_band_reference(
      lambda q, k, v, b, m: attention.dot_product_attention(
          q, k, v, mask=m, bias=b, causal=True, window=window, implementation=impl),
      l, s, g, window, bias_kind="heads" if padded else None, padded=padded)


# The kernel with several blocks: windows shorter and longer than a block, lengths the blocks do
# not divide, causal offsets (diagonal row parts on and off), GQA/MQA, bias and mask.
@pytest.mark.parametrize("l, s, g, window, bq, bk, parts, bias_kind, padded", [
    (37, 37, 2, 5, 8, 16, 4, None, False),  # window < block; rectangular blocks: no row parts
    (64, 64, 1, 40, 16, 16, 2, "full", False),  # window of 2.5 blocks; row parts, trimmed
    (40, 72, 4, 9, 16, 16, 2, "heads", False),  # offset of two blocks; row parts
    (45, 27, 2, 19, 8, 8, 4, "full", True),  # L > S, offset not whole blocks; every block masked
])
def test_chunked_blocks_match_band_mask(l, s, g, window, bq, bk, parts, bias_kind, padded):
  plan = ca._plan(B, l, s, N, g, True, padded, 0.0, bq, bk, 1, parts, window)
  assert plan.nq > 2 and plan.nk > 2 and plan.window == window
  assert plan.parts == (parts if bq == bk and (s - l) % bk == 0 and not padded else 1)
  _assert_matches_band_reference(
      lambda q, k, v, b, m: ca.chunked_attention(
          q, k, v, mask=m, bias=b, causal=True, window=window, block_q=bq, block_k=bk,
          block_elements=1, diagonal_parts=parts),
      l, s, g, window, bias_kind=bias_kind, padded=padded, seed=1)


def test_chunked_dropout_with_a_window_agrees_with_its_backward():
  """The band reference with the kernel's own keep mask: outputs and gradients agree."""
  l, s, g, window, rate = 29, 29, 2, 6, 0.3
  q, k, v, _ = _inputs(l, s, g, seed=3)
  rng = jax.random.key(4)
  keep = jit(ca.dropout_keep_mask, static_argnums=range(1, 7), static_argnames=(
      "block_q", "block_k"))(rng, B, N, g, l, s, rate, block_q=8, block_k=8)
  band = _band(l, s, window)

  def reference(q, k, v, _):
    w = attention.naive_attention(q, k, v, mask=band, return_weights=True)[1]
    w = jnp.where(keep, w / (1.0 - rate), 0.0).reshape(B, g, N // g, l, s)
    return jnp.einsum("bgrls,bsgk->blgrk", w, v).reshape(B, l, N, K)

  g_new, out_new = _grads(lambda q, k, v, _: ca.chunked_attention(
      q, k, v, causal=True, window=window, dropout_rate=rate, dropout_rng=rng, block_q=8,
      block_k=8), q, k, v, None)
  g_ref, out_ref = _grads(reference, q, k, v, None)
  np.testing.assert_allclose(out_new, out_ref, atol=1e-5)
  for a, b in zip(g_new, g_ref):
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_diagonal_parts_stay_on_with_a_window():
  plan = lambda window: ca._plan(1, 64, 64, 2, 2, True, False, 0.0, 16, 16, 1, 4,  # noqa: E731
                                 window).parts
  assert plan(None) == plan(3) == plan(40) == 4


def test_chunked_outputs_depend_on_the_window_only():
  """Changing the key and value at position j changes exactly the outputs i - window < j <= i."""
  l, window = 20, 5
  q, k, v, _ = _inputs(l, l, 2, seed=2)
  f = jit(lambda k, v: ca.chunked_attention(q, k, v, causal=True, window=window, block_q=8,
                                            block_k=8))
  out = f(k, v)
  changed = np.zeros((l, l), bool)  # [i, j]
  for j in range(l):
    bump = np.zeros(k.shape, np.float32)
    bump[:, j] = 3.0
    out_j = f(k + bump, v + bump)
    changed[:, j] = np.abs(np.asarray(out_j) - np.asarray(out)).max(axis=(0, 2, 3)) > 0
  np.testing.assert_array_equal(changed, _band(l, l, window)[0, 0])


@pytest.mark.parametrize("kwargs, match", [
    ({"window": 0, "causal": True}, r"window=0; must be an int >= 1"),
    ({"window": -2, "causal": True}, r"window=-2; must be an int >= 1"),
    ({"window": 2.5, "causal": True}, r"window=2.5; must be an int >= 1"),
    ({"window": True, "causal": True}, r"window=True; must be an int >= 1"),
    ({"window": 3}, r"window=3 needs causal=True"),
])
@pytest.mark.parametrize("impl", [None, "naive", "xla", "chunked"])
def test_bad_window_raises(impl, kwargs, match):
  q, kv = jnp.zeros((B, 6, N, K)), jnp.zeros((B, 6, 2, K))
  with pytest.raises(ValueError, match=match):
    attention.dot_product_attention(q, kv, kv, implementation=impl, **kwargs)
