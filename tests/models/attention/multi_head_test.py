"""MultiHeadAttention as a mixer: against flax.linen's attention and a NumPy computation; decoding
with its explicit state against the full pass; padding; causality; state sizes."""

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


def _decode(mod, variables, x_BLD, pieces, lengths_B=None):
  """Calls on x[:, a:b] for each (a, b) in turn, threading the state; lengths_B on the first call
  only. -> (outputs concatenated, final state)."""
  step = jit(mod.apply)
  state, outs = None, []
  for a, b in pieces:
    y, state = step(variables, x_BLD[:, a:b], lengths_B if a == 0 else None, state)
    outs.append(y)
  return jnp.concatenate(outs, axis=1), state


def _repeat_kv(params, groups):
  """Maps GQA params (key/value with G heads) to plain multi-head params (N heads)."""
  p = jax.tree.map(lambda a: a, params)
  for name in ("key", "value"):
    p["params"][name]["kernel"] = jnp.repeat(p["params"][name]["kernel"], groups, axis=1)
    p["params"][name]["bias"] = jnp.repeat(p["params"][name]["bias"], groups, axis=0)
  return p


def _floats(state):
  return sum(a.size for a in jax.tree.leaves(state) if jnp.issubdtype(a.dtype, jnp.floating))


@pytest.mark.parametrize("cross,causal", [(False, False), (False, True), (True, False)])
def test_equals_flax_multi_head_attention(cross, causal):
  x = _x(0)
  ctx = _x(1, (B, S, D)) if cross else None
  s = S if cross else L
  lengths = jnp.array([s, s - 2])  # ragged padding
  mask = (jnp.arange(s)[None, :] < lengths[:, None])[:, None, None, :]
  ours = mha.MultiHeadAttention(num_heads=4, num_kv_heads=4, causal=causal)
  kwargs = dict(context_BSD=ctx, context_lengths_B=lengths) if cross else {}
  params = _init(ours, 2, x, None if cross else lengths, **kwargs)
  ref_mask = mask
  if causal:
    ref_mask = jnp.logical_and(mask, nn.make_causal_mask(jnp.ones((B, L))))
  ref = nn.MultiHeadDotProductAttention(num_heads=4)
  want = _apply(ref, params, x, x if ctx is None else ctx, mask=ref_mask)
  got, state = _apply(ours, params, x, None if cross else lengths, **kwargs)
  valid = slice(None) if cross or not causal else slice(0, L - 2)  # causal: padded rows unspecified
  np.testing.assert_allclose(got[:, valid], want[:, valid], atol=1e-5)
  assert (state is None) == (not causal and not cross)


@pytest.mark.parametrize("kv_heads", [2, 1])
def test_grouped_and_multi_query_equal_repeated_heads(kv_heads):
  x = _x(0)
  gqa = mha.MultiHeadAttention(num_heads=4, num_kv_heads=kv_heads, causal=True)
  params = _init(gqa, 3, x)
  assert params["params"]["key"]["kernel"].shape == (D, kv_heads, D // 4)
  full = mha.MultiHeadAttention(num_heads=4, causal=True)
  np.testing.assert_allclose(_apply(gqa, params, x)[0],
                             _apply(full, _repeat_kv(params, 4 // kv_heads), x)[0], atol=1e-5)


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


def test_captured_weights_while_decoding_are_the_full_pass_rows():
  x = _x(4)
  mod = mha.MultiHeadAttention(num_heads=4, causal=True, position="alibi", capture_weights=True)
  params = _init(mod, 5, x)
  (_, _), full = _apply(mod, params, x, mutable=["intermediates"])
  (_, state), _ = _apply(mod, params, x[:, :3], mutable=["intermediates"])
  (_, _), step = _apply(mod, params, x[:, 3:], None, state, mutable=["intermediates"])
  (w_full,), (w_step,) = full["intermediates"]["attention_weights"], step[
      "intermediates"]["attention_weights"]
  np.testing.assert_allclose(w_step, w_full[:, :, 3:], atol=1e-6)


def test_no_capture_by_default():
  x = _x(4)
  mod = mha.MultiHeadAttention(num_heads=4)
  params = _init(mod, 5, x)
  _, state = _apply(mod, params, x, mutable=["intermediates"])
  assert not state.get("intermediates")


@pytest.mark.parametrize("kw", [dict(position="alibi"),
                                dict(causal=True, position="rope", num_kv_heads=2, window=2)])
def test_padded_equals_unpadded(kw):
  """Each sequence of a padded batch gives what it gives alone, whatever the padding holds."""
  x = _x(6)
  lengths = jnp.array([L, 3])
  mod = mha.MultiHeadAttention(num_heads=4, **kw)
  params = _init(mod, 7, x)
  y, _ = _apply(mod, params, x, lengths)
  y_noise, _ = _apply(mod, params, x.at[1, 3:].set(_x(8)[1, 3:]), lengths)
  alone, _ = _apply(mod, params, x[1:, :3])
  np.testing.assert_allclose(y[1, :3], alone[0], atol=1e-5)
  np.testing.assert_allclose(y_noise[1, :3], alone[0], atol=1e-5)
  np.testing.assert_allclose(y_noise[0], y[0], atol=1e-6)


# Each relative position, full and windowed, GQA and MQA; every implementation takes the mask form.
@pytest.mark.parametrize("position, kv_heads, window, impl, pieces", [
    ("none", 4, None, None, [(0, 2), (2, 3), (3, 6)]),
    ("rope", 2, None, "xla", [(0, 1), (1, 5), (5, 6)]),
    ("alibi", 2, None, "chunked", [(0, 4), (4, 6)]),
    ("rope", 1, 3, None, [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6)]),
    ("alibi", 2, 2, "xla", [(0, 3), (3, 4), (4, 6)]),
])
def test_decoding_in_pieces_equals_the_full_pass(position, kv_heads, window, impl, pieces):
  """And the state is the full pass's, its floats ``state_size``."""
  x = _x(9, (B, 6, D))
  mod = mha.MultiHeadAttention(num_heads=4, num_kv_heads=kv_heads, causal=True, position=position,
                               window=window, attention_impl=impl)
  params = _init(mod, 10, x)
  full, full_state = _apply(mod, params, x)
  got, state = _decode(mod, params, x, pieces)
  np.testing.assert_allclose(got, full, atol=1e-5)
  for a, b in zip(state, full_state):
    np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), atol=1e-5)
  slots = 6 if window is None else window - 1  # a window's state keeps the last window - 1
  assert state.key_BSGK.shape == (B, slots, kv_heads, D // 4)
  np.testing.assert_array_equal(state.length_B, [6, 6])
  assert _floats(state) == B * mod.state_size(D, 6)


@pytest.mark.parametrize("position, window", [("alibi", None), ("rope", 3)])
def test_decoding_after_a_padded_call_continues_each_sequence_at_its_length(position, window):
  """A prompt batch padded to 4 (lengths 4 and 2), then 3 more tokens in two calls: each row equals
  its unpadded sequence (prompt, then the new tokens) in one full pass."""
  prompt, more = _x(11, (B, 4, D)), _x(12, (B, 3, D))
  lengths = jnp.array([4, 2])
  mod = mha.MultiHeadAttention(num_heads=4, num_kv_heads=2, causal=True, position=position,
                               window=window)
  params = _init(mod, 13, prompt)
  step = jit(mod.apply)
  y_prompt, state = step(params, prompt, lengths, None)
  y1, state = step(params, more[:, :1], None, state)
  y2, state = step(params, more[:, 1:], None, state)
  np.testing.assert_array_equal(state.length_B, [7, 5])
  for row in range(B):
    n = int(lengths[row])
    seq = jnp.concatenate([prompt[row:row + 1, :n], more[row:row + 1]], axis=1)
    want, _ = _apply(mod, params, seq)
    got = jnp.concatenate([y_prompt[row:row + 1, :n], y1[row:row + 1], y2[row:row + 1]], axis=1)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_cross_attention_state_holds_the_context_keys_and_needs_no_context_later():
  x, ctx = _x(17), _x(18, (B, S, D))
  ctx_lengths = jnp.array([S, 4])
  mod = mha.MultiHeadAttention(num_heads=4, num_kv_heads=2)
  params = _init(mod, 19, x, context_BSD=ctx, context_lengths_B=ctx_lengths)
  full, _ = _apply(mod, params, x, context_BSD=ctx, context_lengths_B=ctx_lengths)
  # The first call projects the context into the state; later calls never see it.
  y0, state = _apply(mod, params, x[:, :2], context_BSD=ctx, context_lengths_B=ctx_lengths)
  assert isinstance(state, mha.ContextState) and state.key_BSGK.shape == (B, S, 2, D // 4)
  step = jit(mod.apply)
  outs = [y0] + [step(params, x[:, t:t + 1], None, state)[0] for t in range(2, L)]
  np.testing.assert_allclose(jnp.concatenate(outs, axis=1), full, atol=1e-5)


def test_causal_outputs_depend_on_earlier_inputs_only():
  """Jacobian of every output position with respect to every input position (ALiBi, window 3)."""
  x = _x(20, (1, 6, D))
  mod = mha.MultiHeadAttention(num_heads=4, causal=True, position="alibi", window=3)
  params = _init(mod, 21, x)
  jac = jit(jax.jacrev(lambda x: mod.apply(params, x)[0]))(x)  # [1, L, D, 1, L, D]
  dep = np.abs(np.asarray(jac))[0, :, :, 0].sum(axis=(1, 3)) > 0
  band = np.tril(np.ones((6, 6), bool)) & ~np.tril(np.ones((6, 6), bool), k=-3)
  np.testing.assert_array_equal(dep, band)


@pytest.mark.parametrize("kw, want", [
    (dict(causal=True), 2 * 5 * 4 * 4),  # keys and values: 5 tokens x 4 heads x head dim 4
    (dict(causal=True, num_kv_heads=1), 2 * 5 * 1 * 4),
    (dict(causal=True, window=3), 2 * 2 * 4 * 4),  # the last window - 1 tokens
    (dict(causal=True, window=8), 2 * 5 * 4 * 4),
    (dict(), None),  # bidirectional: no decoding state
])
def test_state_size_formula(kw, want):
  assert mha.MultiHeadAttention(num_heads=4, **kw).state_size(D, 5) == want


def test_bidirectional_attention_returns_no_state():
  x = _x(22)
  mod = mha.MultiHeadAttention(num_heads=4)
  assert _apply(mod, _init(mod, 23, x), x, jnp.array([L, 2]))[1] is None


def test_linear_memory_alibi_form_gives_the_same_output(monkeypatch):
  x = _x(13)
  mod = mha.MultiHeadAttention(num_heads=4, causal=True, position="alibi")
  params = _init(mod, 14, x)
  exact, _ = _apply(mod, params, x)
  monkeypatch.setattr(mha, "ALIBI_FULL_MAX", 0)
  np.testing.assert_allclose(_apply(mod, params, x)[0], exact, atol=1e-5)


def test_dropout_is_random_only_when_not_deterministic():
  x = _x(11)
  mod = mha.MultiHeadAttention(num_heads=2, dropout_rate=0.5)
  params = _init(mod, 12, x)
  y, _ = _apply(mod, params, x)
  train = jit(lambda p, x, r: mod.apply(p, x, deterministic=False, rngs={"dropout": r})[0])
  y1 = train(params, x, jax.random.PRNGKey(0))
  y2 = train(params, x, jax.random.PRNGKey(1))
  assert not np.allclose(y1, y) and not np.allclose(y1, y2)


_CAUSAL_STATE = mha.KeyValueState(jnp.zeros((B, 3, 4, 4)), jnp.zeros((B, 3, 4, 4)),
                                  jnp.ones((B, 3), bool), jnp.full((B,), 3))


@pytest.mark.parametrize("kwargs,call,match", [
    (dict(num_heads=3), {}, r"d_model=16.*num_heads=3"),
    (dict(num_heads=4, num_kv_heads=3), {}, r"num_heads=4.*num_kv_heads=3"),
    (dict(num_heads=4, attention_impl="flash9"), {},
     "attention_impl='flash9' is not an attention implementation"),
    (dict(num_heads=4), dict(lengths_B=jnp.ones((B, L), int)), r"lengths_B must have shape \(2,\)"),
    (dict(num_heads=4, position="rotary"), {}, "unknown position"),
    (dict(num_heads=4, window=0, causal=True), {}, r"window=0; must be an int >= 1"),
    (dict(num_heads=4, window=3), {}, r"window=3 needs causal=True"),
    (dict(num_heads=4, window=3, causal=True), dict(context_BSD=_x(1, (B, S, D))),
     r"window=3 is for causal self-attention"),
    (dict(num_heads=4), dict(state=_CAUSAL_STATE), r"bidirectional self-attention .* no decoding"),
    (dict(num_heads=4, causal=True), dict(state=(1, 2)), "takes state=None or the KeyValueState"),
    (dict(num_heads=4, causal=True, num_kv_heads=2), dict(state=_CAUSAL_STATE),
     r"KeyValueState shapes .* this layer's"),
    (dict(num_heads=4), dict(context_lengths_B=jnp.ones((B,), int)), "context_lengths_B is the "),
    (dict(num_heads=4), dict(context_BSD=_x(1, (B, S, D)), state=_CAUSAL_STATE),
     "takes state=None on its first call"),
])
def test_bad_input_raises_before_compiling(kwargs, call, match):
  with pytest.raises(ValueError, match=match):
    mha.MultiHeadAttention(**kwargs).init(jax.random.PRNGKey(0), _x(0), **call)
