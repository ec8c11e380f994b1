"""Every attention implementation against the naive reference, PyTorch SDPA, and by behaviour."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models.attention import dot_product as attention

IMPLS = ("xla", "chunked")  # None (the default) is naive at these sizes: see test_default_rule
B, N, K = 2, 4, 8


def _inputs(l, s, g, seed=0):
  kq, kk, kv, kb = jax.random.split(jax.random.key(seed), 4)
  q = jax.random.normal(kq, (B, l, N, K))
  k = jax.random.normal(kk, (B, s, g, K))
  v = jax.random.normal(kv, (B, s, g, K))
  bias = jax.random.normal(kb, (N, l, s))
  return q, k, v, bias


def _key_padding(s, lengths):
  return (jnp.arange(s)[None, :] < jnp.asarray(lengths)[:, None])[:, None, None, :]  # [B,1,1,S]


# (name, L, S, G, kwargs builder): ragged padding, GQA, L != S both ways, bias, causal.
CASES = {
    "plain": (9, 9, 4, lambda l, s, bias: {}),
    "causal": (9, 9, 4, lambda l, s, bias: {"causal": True}),
    "padding_gqa": (7, 11, 2, lambda l, s, bias: {"mask": _key_padding(s, [11, 4])}),
    "causal_bias_mqa_l_gt_s": (11, 7, 1, lambda l, s, bias: {"causal": True, "bias": bias}),
    "causal_mask_bias_l_lt_s": (5, 12, 2, lambda l, s, bias: {
        "causal": True, "bias": bias, "mask": _key_padding(s, [12, 9])}),
}


def _loss(impl, kwargs):
  def f(q, k, v, bias=None):
    kw = dict(kwargs)
    if "bias" in kw:
      kw["bias"] = bias
    out = attention.dot_product_attention(q, k, v, implementation=impl, **kw)
    return jnp.sum(out * jnp.cos(jnp.arange(out.size, dtype=out.dtype).reshape(out.shape))), out
  return f


@functools.cache
def _naive_grads(case):
  l, s, g, make = CASES[case]
  q, k, v, bias = _inputs(l, s, g)
  kwargs = make(l, s, bias)
  argnums = (0, 1, 2, 3) if "bias" in kwargs else (0, 1, 2)
  return jax.jit(jax.grad(_loss("naive", kwargs), argnums=argnums, has_aux=True))(q, k, v, bias)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("impl", IMPLS)
def test_matches_naive_outputs_and_gradients(impl, case):
  l, s, g, make = CASES[case]
  q, k, v, bias = _inputs(l, s, g)
  kwargs = make(l, s, bias)
  argnums = (0, 1, 2, 3) if "bias" in kwargs else (0, 1, 2)
  fn = jax.jit(jax.grad(_loss(impl, kwargs), argnums=argnums, has_aux=True))
  g_new, out_new = fn(q, k, v, bias)
  g_ref, out_ref = _naive_grads(case)
  np.testing.assert_allclose(out_new, out_ref, atol=1e-5)
  for a, b in zip(g_new, g_ref):
    np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("impl", ("naive",) + IMPLS)
def test_matches_torch_sdpa(impl):
  torch = pytest.importorskip("torch")
  sdpa = torch.nn.functional.scaled_dot_product_attention
  l = s = 10
  q, k, v, _ = _inputs(l, s, 2, seed=1)
  mask = _key_padding(s, [10, 6])
  for causal in (False, True):
    f = lambda q, k, v: attention.dot_product_attention(q, k, v, mask=mask, causal=causal,
                                                        implementation=impl)
    out, grads = jax.jit(lambda *a: (f(*a), jax.grad(lambda *b: jnp.sum(f(*b) ** 2),
                                                     argnums=(0, 1, 2))(*a)))(q, k, v)
    allowed = np.asarray(mask) & (np.tril(np.ones((l, s), bool)) if causal else True)
    tq, tk, tv = (torch.tensor(np.asarray(x)).transpose(1, 2).requires_grad_() for x in (q, k, v))
    t_out = sdpa(tq, tk, tv, attn_mask=torch.tensor(allowed), enable_gqa=True)
    (t_out ** 2).sum().backward()
    np.testing.assert_allclose(out, t_out.transpose(1, 2).detach().numpy(), atol=1e-5)
    for a, t in zip(grads, (tq, tk, tv)):
      np.testing.assert_allclose(a, t.grad.transpose(1, 2).numpy(), atol=1e-5)


@pytest.mark.parametrize("impl", ("naive",) + IMPLS)
def test_causality_through_gradients(impl):
  l = 6
  q, k, v, _ = _inputs(l, l, 2, seed=2)
  f = lambda q, k, v: attention.dot_product_attention(q, k, v, causal=True, implementation=impl)
  jac = jax.jit(jax.jacrev(f, argnums=(0, 1, 2)))(q, k, v)  # each [B, L, N, K, B, L, G|N, K]
  later = np.triu(np.ones((l, l), bool), 1)  # [i, j]: j > i
  for d in jac:
    dep = np.abs(np.asarray(d)).sum(axis=(0, 2, 3, 4, 6, 7))  # [i, j]
    assert np.all(dep[later] == 0.0)
    assert np.all(dep[np.tril(np.ones((l, l), bool))].sum() > 0.0)


@pytest.mark.parametrize("impl", ("naive",) + IMPLS)
def test_padded_tokens_change_no_unpadded_output(impl):
  l = 8
  q, k, v, _ = _inputs(l, l, 4, seed=3)
  lengths = jnp.array([8, 5])
  valid = jnp.arange(l)[None, :] < lengths[:, None]  # [B, L]
  mask = valid[:, None, None, :] & valid[:, None, :, None]  # keys and queries padded
  f = jax.jit(lambda k, v: attention.dot_product_attention(q, k, v, mask=mask, implementation=impl))
  noise = jnp.where(valid[:, :, None, None], 0.0, 100.0)
  out, out2 = f(k, v), f(k + noise, v - noise)
  np.testing.assert_allclose(out2, out, atol=1e-6)
  np.testing.assert_array_equal(out[1, 5:], 0.0)  # fully padded query rows give zeros


# cuDNN takes bfloat16 (not float32) and runs on a GPU only: scripts/device_check.sh runs this file
# there, where it joins the implementations compared.
BF16_IMPLS = ("naive",) + IMPLS + (("cudnn",) if jax.default_backend() == "gpu" else ())
BF16_CASES = {"causal": lambda s: {"causal": True},
              "padding": lambda s: {"mask": _key_padding(s, [s, s // 2 + 1])}}


@pytest.mark.parametrize("case", sorted(BF16_CASES))
@pytest.mark.parametrize("impl", BF16_IMPLS)
def test_bfloat16_matches_float32_naive(impl, case):
  l = 16
  q, k, v = (x.astype(jnp.bfloat16) for x in _inputs(l, l, 2, seed=6)[:3])
  kwargs = BF16_CASES[case](l)
  weights = jnp.cos(jnp.arange(B * l * N * K, dtype=jnp.float32)).reshape(B, l, N, K)

  def loss(impl, q, k, v):
    out = attention.dot_product_attention(q, k, v, implementation=impl, **kwargs)
    return jnp.sum(out.astype(jnp.float32) * weights), out
  fn = lambda impl: jax.jit(jax.grad(functools.partial(loss, impl), argnums=(0, 1, 2),  # noqa: E731
                                     has_aux=True))
  grads, out = fn(impl)(q, k, v)
  ref_grads, ref = fn("naive")(*(x.astype(jnp.float32) for x in (q, k, v)))
  assert out.dtype == jnp.bfloat16 and all(g.dtype == jnp.bfloat16 for g in grads)
  # About one bfloat16 step (2^-6 at 2 to 4) at these magnitudes: outputs up to 2, gradients to 3.
  np.testing.assert_allclose(out.astype(jnp.float32), ref, atol=2e-2)
  for a, b in zip(grads, ref_grads):
    np.testing.assert_allclose(a.astype(jnp.float32), b, atol=3e-2)


def test_weights_rows_sum_to_one_and_padded_keys_get_zero():
  l = 7
  q, k, v, bias = _inputs(l, l, 2, seed=4)
  mask = _key_padding(l, [7, 3])
  for impl in ("naive", "chunked", None):
    out, w = jax.jit(lambda q, k, v: attention.dot_product_attention(
        q, k, v, mask=mask, bias=bias, causal=True, return_weights=True, implementation=impl))(
            q, k, v)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(w[1, :, :, 3:], 0.0)
    np.testing.assert_array_equal(np.triu(np.asarray(w[0, 0]), 1), 0.0)
    np.testing.assert_allclose(out, attention.naive_attention(
        q, k, v, mask=mask, bias=bias, causal=True), atol=1e-6)


def test_dropout_keeps_expectation_and_zeroes_some_weights():
  q, k, v, _ = _inputs(6, 6, 4, seed=5)
  rng = jax.random.key(7)
  out = attention.dot_product_attention(q, k, v, dropout_rate=0.5, dropout_rng=rng,
                                        implementation="naive")
  assert not np.allclose(out, attention.naive_attention(q, k, v))
  outs = jax.jit(jax.vmap(lambda r: attention.naive_attention(
      q, k, v, dropout_rate=0.5, dropout_rng=r)))(jax.random.split(rng, 400))
  np.testing.assert_allclose(outs.mean(0), attention.naive_attention(q, k, v), atol=0.2)


def test_default_rule():
  q_short, q_long = jnp.zeros((1, 64, 1, 8)), jnp.zeros((1, 4096, 1, 8))
  pick = attention.default_implementation
  assert pick(q_short, q_short, backend="cpu") == "naive"
  assert pick(q_long, q_long, backend="cpu") == "chunked"
  assert pick(q_long, q_long, return_weights=True, backend="cpu") == "naive"
  assert pick(q_long.astype(jnp.bfloat16), q_long, backend="gpu") == "cudnn"
  assert pick(q_long, q_long, backend="gpu") == "xla"
  assert pick(q_long, q_long, dropout_rate=0.1, backend="gpu") == "chunked"


@pytest.mark.parametrize("kwargs, match", [
    ({"implementation": "flash"}, r"unknown attention implementation 'flash'.*naive"),
    pytest.param({"implementation": "cudnn"}, r"cudnn.*GPU.*'cpu'", marks=pytest.mark.skipif(
        jax.default_backend() == "gpu", reason="cudnn runs on a GPU")),
    ({"mask": jnp.ones((3, 1, 1, 5), bool)}, r"mask of shape \(3, 1, 1, 5\) does not broadcast"),
    ({"mask": jnp.ones((5,), jnp.float32)}, r"mask must be boolean"),
    ({"bias": jnp.ones((3, 6, 1))}, r"bias of shape \(3, 6, 1\) does not broadcast"),
    ({"implementation": "xla", "return_weights": True}, r"'xla' cannot return attention weights"),
    ({"implementation": "xla", "dropout_rate": 0.1, "dropout_rng": jax.random.key(0)},
     r"'xla' has no attention dropout"),
    ({"dropout_rate": 0.1}, r"needs a dropout_rng"),
    ({"dropout_rate": 1.0, "dropout_rng": jax.random.key(0)}, r"dropout_rate must be in \[0, 1\)"),
])
def test_bad_input_raises(kwargs, match):
  q = jnp.zeros((2, 6, 4, 8))
  kv = jnp.zeros((2, 5, 2, 8))
  with pytest.raises(ValueError, match=match):
    attention.dot_product_attention(q, kv, kv, **kwargs)


@pytest.mark.parametrize("shapes, match", [
    (((2, 6, 8), (2, 5, 2, 8), (2, 5, 2, 8)), r"q must be rank 4"),
    (((2, 6, 4, 8), (2, 5, 2, 4), (2, 5, 2, 4)), r"head_dim of q \(8\) and k \(4\) differ"),
    (((2, 6, 4, 8), (2, 5, 3, 8), (2, 5, 3, 8)), r"query heads \(4\).*key/value heads \(3\)"),
    (((2, 6, 4, 8), (2, 5, 2, 8), (2, 4, 2, 8)), r"k and v shapes differ"),
    (((2, 6, 4, 8), (1, 5, 2, 8), (1, 5, 2, 8)), r"batch of q \(2\) and k/v \(1\) differ"),
])
def test_bad_shapes_raise(shapes, match):
  q, k, v = (jnp.zeros(s) for s in shapes)
  with pytest.raises(ValueError, match=match):
    attention.dot_product_attention(q, k, v, implementation="chunked")
