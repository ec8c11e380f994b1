"""MultiHeadAttention against flax.linen's attention and a by-hand NumPy computation."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models.attention import multi_head as mha

B, L, S, D = 2, 5, 7, 16
# These programs are tiny: compile time dominates, so skip the slow LLVM optimisation passes.
jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


def _x(seed, shape=(B, L, D)):
  return jax.random.normal(jax.random.PRNGKey(seed), shape)


def _init(mod, seed, *args, **kwargs):
  """Jitted init: one compile is much cheaper than running every op eagerly."""
  return jit(functools.partial(mod.init, **kwargs))(jax.random.PRNGKey(seed), *args)


def _apply(mod, variables, *args, **kwargs):
  return jit(functools.partial(mod.apply, **kwargs))(variables, *args)


def _repeat_kv(params, groups):
  """Maps GQA params (key/value with G heads) to plain multi-head params (N heads)."""
  p = jax.tree.map(lambda a: a, params)
  for name in ("key", "value"):
    p["params"][name]["kernel"] = jnp.repeat(p["params"][name]["kernel"], groups, axis=1)
    p["params"][name]["bias"] = jnp.repeat(p["params"][name]["bias"], groups, axis=0)
  return p


@pytest.mark.parametrize("cross,causal", [(False, False), (False, True), (True, False)])
def test_equals_flax_multi_head_attention(cross, causal):
  x = _x(0)
  ctx = _x(1, (B, S, D)) if cross else None
  s = S if cross else L
  key_mask = jnp.arange(s)[None, :] < jnp.array([s, s - 2])[:, None]  # ragged padding
  mask = key_mask[:, None, None, :]
  ours = mha.MultiHeadAttention(num_heads=4, num_kv_heads=4, causal=causal)
  params = _init(ours, 2, x, ctx, mask)
  ref_mask = mask
  if causal:
    ref_mask = jnp.logical_and(mask, nn.make_causal_mask(jnp.ones((B, L))))
  ref = nn.MultiHeadDotProductAttention(num_heads=4)
  want = _apply(ref, params, x, x if ctx is None else ctx, mask=ref_mask)
  np.testing.assert_allclose(_apply(ours, params, x, ctx, mask), want, atol=1e-5)


@pytest.mark.parametrize("kv_heads", [2, 1])
def test_grouped_and_multi_query_equal_repeated_heads(kv_heads):
  x = _x(0)
  gqa = mha.MultiHeadAttention(num_heads=4, num_kv_heads=kv_heads, causal=True)
  params = _init(gqa, 3, x)
  assert params["params"]["key"]["kernel"].shape == (D, kv_heads, D // 4)
  full = mha.MultiHeadAttention(num_heads=4, causal=True)
  np.testing.assert_allclose(_apply(gqa, params, x),
                             _apply(full, _repeat_kv(params, 4 // kv_heads), x), atol=1e-5)


def _softmax(z):
  z = z - z.max(-1, keepdims=True)
  return np.exp(z) / np.exp(z).sum(-1, keepdims=True)


def test_captured_weights_match_hand_computation():
  x = _x(4)
  mod = mha.MultiHeadAttention(num_heads=4, num_kv_heads=2, causal=True, capture_weights=True)
  params = _init(mod, 5, x)
  _, state = _apply(mod, params, x, mutable=["intermediates"])
  (w,) = state["intermediates"]["attention_weights"]
  w = np.asarray(w)
  assert w.shape == (B, 4, L, L)
  np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-6)

  p = jax.tree.map(np.asarray, params["params"])
  xn = np.asarray(x)
  q = np.einsum("bld,dnk->blnk", xn, p["query"]["kernel"]) + p["query"]["bias"]
  k = np.einsum("bld,dnk->blnk", xn, p["key"]["kernel"]) + p["key"]["bias"]
  k = np.repeat(k, 2, axis=2)  # query head n uses key head n // 2
  logits = np.einsum("blnk,bsnk->bnls", q, k) / np.sqrt(4)
  logits = np.where(np.tril(np.ones((L, L), bool)), logits, -np.inf)
  np.testing.assert_allclose(w, _softmax(logits), atol=1e-5)


def test_no_capture_by_default():
  x = _x(4)
  mod = mha.MultiHeadAttention(num_heads=4)
  params = _init(mod, 5, x)
  _, state = _apply(mod, params, x, mutable=["intermediates"])
  assert not state.get("intermediates")


def test_changing_padded_keys_changes_nothing():
  x = _x(6)
  mask = (jnp.arange(L) < 3)[None, None, None, :]
  mod = mha.MultiHeadAttention(num_heads=2, position="alibi")
  params = _init(mod, 7, x)
  x2 = x.at[:, 3:].set(_x(8)[:, 3:])
  np.testing.assert_allclose(_apply(mod, params, x, mask=mask)[:, :3],
                             _apply(mod, params, x2, mask=mask)[:, :3], atol=1e-6)


@pytest.mark.parametrize("position", ["rope", "alibi"])
def test_cached_decoding_equals_full_causal_pass(position):
  x = _x(9, (B, 6, D))
  mod = mha.MultiHeadAttention(num_heads=4, num_kv_heads=2, causal=True, position=position)
  variables = _init(mod, 10, x, decode=True)
  full = _apply(mod, {"params": variables["params"]}, x)
  step = jit(functools.partial(mod.apply, decode=True, mutable=["cache"]))
  cache, outs = variables["cache"], []
  # A 2-token prefill, then one token at a time.
  for start, stop in [(0, 2), (2, 3), (3, 4), (4, 5), (5, 6)]:
    y, state = step({"params": variables["params"], "cache": cache}, x[:, start:stop])
    cache = state["cache"]
    outs.append(y)
  np.testing.assert_allclose(jnp.concatenate(outs, axis=1), full, atol=1e-5)
  assert int(cache["cache_index"]) == 6


def test_windowed_cached_decoding_equals_full_pass():
  # Window 3 of 8 positions: the steps' cache mask must drop the keys that fell out of it.
  x = _x(15, (B, 8, D))
  mod = mha.MultiHeadAttention(num_heads=4, num_kv_heads=2, causal=True, position="rope", window=3)
  variables = _init(mod, 16, x, decode=True)
  params = {"params": variables["params"]}
  full = _apply(mod, params, x)
  wide = _apply(mha.MultiHeadAttention(num_heads=4, num_kv_heads=2, causal=True, position="rope"),
                params, x)
  assert not np.allclose(full[:, 3:], wide[:, 3:], atol=1e-3)  # the window matters from 3 on
  np.testing.assert_allclose(full[:, :3], wide[:, :3], atol=1e-6)
  step = jit(functools.partial(mod.apply, decode=True, mutable=["cache"]))
  cache, outs = variables["cache"], []
  for start, stop in [(0, 2)] + [(t, t + 1) for t in range(2, 8)]:
    y, state = step({**params, "cache": cache}, x[:, start:stop])
    cache = state["cache"]
    outs.append(y)
  np.testing.assert_allclose(jnp.concatenate(outs, axis=1), full, atol=1e-5)


def test_cross_attention_decoding_caches_the_context_keys():
  x, ctx = _x(17), _x(18, (B, S, D))
  mask = (jnp.arange(S)[None, :] < jnp.array([S, 4])[:, None])[:, None, None, :]
  mod = mha.MultiHeadAttention(num_heads=4, num_kv_heads=2)
  params = {"params": _init(mod, 19, x, ctx, mask)["params"]}
  full = _apply(mod, params, x, ctx, mask)
  # The first decode call projects the context into the cache; later calls never read it again.
  _, state = _apply(mod, params, x[:, :1], ctx, mask, decode=True, mutable=["cache"])
  assert state["cache"]["cached_key"].shape == (B, S, 2, D // 4)
  step = jit(functools.partial(mod.apply, decode=True, mutable=["cache"]))
  outs = [step({**params, **state}, x[:, t:t + 1], jnp.zeros_like(ctx), mask)[0] for t in range(L)]
  np.testing.assert_allclose(jnp.concatenate(outs, axis=1), full, atol=1e-5)


def test_linear_memory_alibi_form_gives_the_same_output(monkeypatch):
  x = _x(13)
  mod = mha.MultiHeadAttention(num_heads=4, causal=True, position="alibi")
  params = _init(mod, 14, x)
  exact = _apply(mod, params, x)
  monkeypatch.setattr(mha, "ALIBI_FULL_MAX", 0)
  np.testing.assert_allclose(_apply(mod, params, x), exact, atol=1e-5)


def test_dropout_is_random_only_when_not_deterministic():
  x = _x(11)
  mod = mha.MultiHeadAttention(num_heads=2, dropout_rate=0.5)
  params = _init(mod, 12, x)
  y = _apply(mod, params, x)
  train = jit(lambda p, x, r: mod.apply(p, x, deterministic=False, rngs={"dropout": r}))
  y1 = train(params, x, jax.random.PRNGKey(0))
  y2 = train(params, x, jax.random.PRNGKey(1))
  assert not np.allclose(y1, y) and not np.allclose(y1, y2)


@pytest.mark.parametrize("kwargs,call,match", [
    (dict(num_heads=3), {}, r"d_model=16.*num_heads=3"),
    (dict(num_heads=4, num_kv_heads=3), {}, r"num_heads=4.*num_kv_heads=3"),
    (dict(num_heads=4, implementation="flash9"), {}, "unknown attention implementation 'flash9'"),
    (dict(num_heads=4), dict(mask=jnp.ones((B, 1, L, L + 1), bool)), "does not broadcast"),
    (dict(num_heads=4), dict(mask=jnp.ones((B, L), bool)), "does not broadcast"),
    (dict(num_heads=4, position="rotary"), {}, "unknown position"),
    (dict(num_heads=4, window=0, causal=True), {}, r"window=0; must be an int >= 1"),
    (dict(num_heads=4, window=3), {}, r"window=3 needs causal=True"),
    (dict(num_heads=4, window=3, causal=True), dict(context_BSD=_x(1, (B, S, D))),
     r"window=3 is for causal self-attention"),
])
def test_bad_input_raises_before_compiling(kwargs, call, match):
  with pytest.raises(ValueError, match=match):
    mha.MultiHeadAttention(**kwargs).init(jax.random.PRNGKey(0), _x(0), **call)
