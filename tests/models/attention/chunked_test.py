"""Chunked attention with several blocks: equals naive, dropout agrees with its backward, memory."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models.attention import dot_product as attention
from attnlab.models.attention import chunked as ca

B, N, K = 2, 4, 8


def _inputs(l, s, g, seed=0):
  kq, kk, kv, kb = jax.random.split(jax.random.key(seed), 4)
  return (jax.random.normal(kq, (B, l, N, K)), jax.random.normal(kk, (B, s, g, K)),
          jax.random.normal(kv, (B, s, g, K)), jax.random.normal(kb, (N, l, s)))


def _grads(fn, q, k, v, bias):
  def loss(q, k, v, bias):
    out = fn(q, k, v, bias)
    return jnp.sum(out * jnp.sin(jnp.arange(out.size, dtype=out.dtype).reshape(out.shape))), out
  argnums = (0, 1, 2) if bias is None else (0, 1, 2, 3)
  return jax.jit(jax.grad(loss, argnums=argnums, has_aux=True))(q, k, v, bias)


# Blocks (8 x 16) that divide neither length; causal with L > S and L < S; GQA, MQA; bias shapes;
# groups of (batch, kv head) pairs: one pair each (block_elements=1; the per-head bias and its
# gradient cut per group), two heads of one batch entry (per-batch mask cut), or all in one group.
@pytest.mark.parametrize("l, s, g, causal, mask_kind, bias_kind, block_elements", [
    (37, 29, 2, False, "keys", None, 1),
    (37, 37, 4, True, None, "full", 1),
    (21, 45, 1, True, "keys", "keys", 2**21),
    (45, 21, 2, True, "queries_keys", "heads", 2 * 2 * 8 * 16),
])
def test_blocks_match_naive(l, s, g, causal, mask_kind, bias_kind, block_elements):
  q, k, v, bias_full = _inputs(l, s, g)
  mask = None
  if mask_kind:
    key_ok = jnp.arange(s)[None, :] < jnp.array([s, s // 2])[:, None]
    mask = key_ok[:, None, None, :]
    if mask_kind == "queries_keys":
      mask = mask & (jnp.arange(l)[None, :] < jnp.array([l, l - 9])[:, None])[:, None, :, None]
  bias = {None: None, "full": bias_full, "keys": bias_full[:1, :1, :][None],  # [1,1,1,S]
          "heads": bias_full[:, :1, :1]}[bias_kind]  # [N,1,1]
  kw = {"mask": mask, "causal": causal}
  (g_new, out_new) = _grads(lambda q, k, v, b: ca.chunked_attention(
      q, k, v, bias=b, block_q=8, block_k=16, block_elements=block_elements, **kw), q, k, v, bias)
  (g_ref, out_ref) = _grads(lambda q, k, v, b: attention.naive_attention(
      q, k, v, bias=b, **kw), q, k, v, bias)
  np.testing.assert_allclose(out_new, out_ref, atol=1e-5)
  for a, b in zip(g_new, g_ref):
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, atol=1e-5)


# Square blocks (16) with causal diagonal blocks split into row parts: L = S, a causal offset of two
# blocks (L < S), lengths the blocks do not divide; GQA and MQA; bias shapes and their gradients.
@pytest.mark.parametrize("l, s, g, bias_kind, parts", [
    (48, 48, 2, "full", 4),
    (40, 72, 4, "heads", 2),
    (37, 37, 1, "keys", 2),
])
def test_diagonal_parts_match_naive(l, s, g, bias_kind, parts):
  q, k, v, bias_full = _inputs(l, s, g, seed=2)
  bias = {"full": bias_full, "keys": bias_full[:1, :1, :][None], "heads": bias_full[:, :1, :1]}[
      bias_kind]
  assert ca._plan(B, l, s, N, g, True, False, 0.0, 16, 16, 1, parts).parts == parts
  (g_new, out_new) = _grads(lambda q, k, v, b: ca.chunked_attention(
      q, k, v, bias=b, causal=True, block_q=16, block_k=16, block_elements=1,
      diagonal_parts=parts), q, k, v, bias)
  (g_ref, out_ref) = _grads(lambda q, k, v, b: attention.naive_attention(
      q, k, v, bias=b, causal=True), q, k, v, bias)
  np.testing.assert_allclose(out_new, out_ref, atol=1e-5)
  for a, b in zip(g_new, g_ref):
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_diagonal_parts_only_where_the_diagonal_is_the_only_masked_block():
  plan = lambda l, s, causal=True, mask=False, rate=0.0, bq=16, bk=16: ca._plan(  # noqa: E731
      1, l, s, 2, 2, causal, mask, rate, bq, bk, 1, 4).parts
  assert plan(64, 64) == 4 and plan(48, 80) == 4  # offset of two whole blocks
  assert plan(64, 64, causal=False) == 1 and plan(64, 64, mask=True) == 1
  assert plan(64, 64, rate=0.1) == 1 and plan(64, 64, bk=8) == 1
  assert plan(48, 72) == 1 and plan(72, 48) == 1  # offset not a whole block; L > S


@pytest.mark.parametrize("block_elements", [1, 2**21])  # 4 groups, 1 group
def test_dropout_backward_agrees_with_forward(block_elements):
  """The reference formula with the same keep mask: outputs and gradients agree."""
  l, s, g, rate = 19, 23, 2, 0.3
  q, k, v, _ = _inputs(l, s, g, seed=1)
  rng = jax.random.key(3)
  keep = jax.jit(ca.dropout_keep_mask, static_argnums=range(1, 7), static_argnames=(
      "block_q", "block_k", "block_elements"))(rng, B, N, g, l, s, rate, block_q=8, block_k=16,
                                                block_elements=block_elements)

  def reference(q, k, v, _):
    w = attention.naive_attention(q, k, v, causal=True, return_weights=True)[1]
    w = jnp.where(keep, w / (1.0 - rate), 0.0).reshape(B, g, N // g, l, s)
    return jnp.einsum("bgrls,bsgk->blgrk", w, v).reshape(B, l, N, K)

  g_new, out_new = _grads(lambda q, k, v, _: ca.chunked_attention(
      q, k, v, causal=True, dropout_rate=rate, dropout_rng=rng, block_q=8, block_k=16,
      block_elements=block_elements),
      q, k, v, None)
  g_ref, out_ref = _grads(reference, q, k, v, None)
  assert 0.6 < float(keep.mean()) < 0.8
  np.testing.assert_allclose(out_new, out_ref, atol=1e-5)
  for a, b in zip(g_new, g_ref):
    np.testing.assert_allclose(a, b, atol=1e-5)


def _grad_temp_bytes(length, causal=False):
  q = jnp.zeros((1, length, 2, 8))
  f = jax.grad(lambda q, k, v: ca.chunked_attention(q, k, v, causal=causal, block_q=64,
                                                    block_k=64).sum(), argnums=(0, 1, 2))
  compiled = jax.jit(f).lower(q, q, q).compile()
  hlo = compiled.as_text()
  return compiled.memory_analysis().temp_size_in_bytes, hlo


def test_backward_memory_is_linear_in_length():
  small, _ = _grad_temp_bytes(1024)
  large, hlo = _grad_temp_bytes(4096)
  assert large < 5 * small  # quadratic would be 16x
  # No buffer with L * S (or L * S / 4) elements anywhere in the compiled program.
  assert "4096,4096" not in hlo and "2048,4096" not in hlo and "4096,2048" not in hlo
  naive = jax.jit(jax.grad(lambda q: attention.naive_attention(q, q, q).sum())).lower(
      jnp.zeros((1, 4096, 2, 8))).compile().memory_analysis().temp_size_in_bytes
  assert naive > 10 * large


def test_group_shape_fills_heads_first_then_batch():
  assert ca._group_shape(4, 8, 1, 1024, 1024, 2**21) == (1, 2)  # two heads per group
  assert ca._group_shape(4, 8, 1, 256, 256, 2**21) == (4, 8)  # everything in one group
  assert ca._group_shape(4, 8, 2, 256, 256, 2**20) == (1, 8)  # a whole batch entry (G * R = 16)
  assert ca._group_shape(4, 6, 1, 512, 512, 4 * 512 * 512) == (1, 3)  # a divisor of G
  assert ca._group_shape(4, 8, 1, 4096, 4096, 2**21) == (1, 1)  # never fewer than one pair
