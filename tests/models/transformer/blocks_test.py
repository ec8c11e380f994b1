"""Transformer stacks: decoding with the explicit state equals the full pass; padding; causality
and padding through gradients; state sizes."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models.transformer import blocks as tf
from attnlab.models.transformer import short_conv

B, L, D = 2, 6, 16
# These programs are tiny: compile time dominates, so skip the slow LLVM optimisation passes.
jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


def _cfg(**kw):
  base = dict(num_layers=2, d_model=D, num_heads=4, d_ff=32, max_len=8)
  return tf.TransformerConfig(**{**base, **kw})


def _x(seed, shape=(B, L, D)):
  return jax.random.normal(jax.random.PRNGKey(seed), shape)


def _init(mod, *args, **kwargs):
  """Jitted init, parameters only (init also returns sown "losses", not wanted in apply)."""
  variables = jit(functools.partial(mod.init, **kwargs))(jax.random.PRNGKey(0), *args)
  return {k: v for k, v in variables.items() if k != "losses"}


def _floats(state):
  return sum(a.size for a in jax.tree.leaves(state) if jnp.issubdtype(a.dtype, jnp.floating))


def _decode(apply, x_BLD, pieces, lengths_B=None, **first):
  """apply(x, lengths, state, **kw) -> ((y, state), ...) on x[:, a:b] for each piece in turn;
  lengths_B and ``first`` (the context) on the first call only. -> (outputs, final state)."""
  state, outs = None, []
  for a, b in pieces:
    y, state = apply(x_BLD[:, a:b], lengths_B if a == 0 else None, state,
                     **(first if a == 0 else {}))
    outs.append(y)
  return jnp.concatenate(outs, axis=1), state


ONE_BY_ONE = [(t, t + 1) for t in range(L)]
UNEVEN = [(0, 2), (2, 3), (3, 6)]


# Every position kind; GQA, MQA, a window, the short convolution (its state carried too), MoE.
@pytest.mark.parametrize("kw, pieces", [
    (dict(position="none", window=3, conv_width=2), UNEVEN),
    (dict(position="sinusoidal", conv_width=3), ONE_BY_ONE),
    (dict(position="learned", num_kv_heads=2), UNEVEN),
    (dict(position="rope", num_kv_heads=1, moe_experts=4, moe_top_k=2, moe_capacity_factor=4.0),
     UNEVEN),
    (dict(position="alibi", num_kv_heads=2, window=2), [(0, 1), (1, 5), (5, 6)]),
])
def test_decoding_in_pieces_equals_the_full_pass(kw, pieces):
  x = _x(1)
  cfg = _cfg(**kw)
  dec = tf.Decoder(cfg)
  params = _init(dec, x)
  apply = jit(lambda x, lengths, state: dec.apply(params, x, lengths, state, mutable=["losses"])[0])
  full, _ = apply(x, None, None)
  got, state = _decode(apply, x, pieces)
  np.testing.assert_allclose(got, full, atol=2e-5)
  np.testing.assert_array_equal(state.length_B, [L, L])
  assert _floats(state) == B * dec.state_size(D, L)


def test_windowed_decoder_sees_less_than_the_full_one():
  x = _x(12)
  params = _init(tf.Decoder(_cfg(position="rope", num_kv_heads=2, window=2)), x)
  full, _ = jit(tf.Decoder(_cfg(position="rope", num_kv_heads=2, window=2)).apply)(params, x)
  # Positions before the window's length see everything; from there on every layer sees less.
  wide, _ = jit(tf.Decoder(_cfg(position="rope", num_kv_heads=2)).apply)(params, x)
  np.testing.assert_allclose(full[:, :2], wide[:, :2], atol=1e-5)
  assert not np.allclose(full[:, 2:], wide[:, 2:], atol=1e-3)


# Additive positions (the stack's per-sequence offsets) and relative ones, a window, the conv.
@pytest.mark.parametrize("kw", [
    dict(position="learned", conv_width=3),
    dict(position="rope", num_kv_heads=2, window=3),
])
def test_decoding_after_a_padded_call_continues_each_sequence_at_its_length(kw):
  """A prompt batch padded to 4 (lengths 4 and 2), then 2 more tokens one at a time: each row
  equals its unpadded sequence in one full pass."""
  prompt, more = _x(15, (B, 4, D)), _x(16, (B, 2, D))
  lengths = jnp.array([4, 2])
  dec = tf.Decoder(_cfg(**kw))
  params = _init(dec, prompt)
  step = jit(dec.apply)
  y_prompt, state = step(params, prompt, lengths, None)
  y1, state = step(params, more[:, :1], None, state)
  y2, state = step(params, more[:, 1:], None, state)
  np.testing.assert_array_equal(state.length_B, [6, 4])
  for row in range(B):
    n = int(lengths[row])
    want, _ = step(params, jnp.concatenate([prompt[row:row + 1, :n], more[row:row + 1]], axis=1),
                   None, None)
    got = jnp.concatenate([y_prompt[row:row + 1, :n], y1[row:row + 1], y2[row:row + 1]], axis=1)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_decoder_padded_equals_unpadded_with_moe_routing():
  """Padding contents change no valid output; MoE keeps padded tokens out of its routing (with
  tight capacity, routing them would take slots from real tokens)."""
  cfg = _cfg(position="learned", conv_width=2, moe_experts=2, moe_capacity_factor=0.5)
  dec = tf.Decoder(cfg)
  lengths = jnp.array([L, 3])
  x = _x(17)
  params = _init(dec, x)
  apply = jit(lambda x: dec.apply(params, x, lengths, mutable=["losses"])[0][0])
  y, y_noise = apply(x), apply(x.at[1, 3:].set(_x(18)[1, 3:]))
  np.testing.assert_allclose(y_noise[0], y[0], atol=1e-6)
  np.testing.assert_allclose(y_noise[1, :3], y[1, :3], atol=1e-6)


# Positions the decoder adds itself (learned, sinusoidal: offset by each sequence's length) or in
# its self-attention (rope); a padded source (its lengths on the first call only) and none.
@pytest.mark.parametrize("position, padded, num_layers, pieces", [
    ("learned", True, 2, UNEVEN), ("sinusoidal", False, 1, ONE_BY_ONE),
    ("rope", True, 1, [(0, 4), (4, 6)])])
def test_encoder_decoder_decoding_equals_the_full_pass(position, padded, num_layers, pieces):
  cfg = _cfg(position=position, num_kv_heads=2, num_layers=num_layers, conv_width=2)
  model = tf.EncoderDecoder(cfg)
  src, tgt = _x(13, (B, 5, D)), _x(14)
  src_lengths = jnp.array([5, 3]) if padded else None
  params = {"params": _init(model, src, tgt, src_lengths)["params"]}
  full = jit(model.apply)(params, src, tgt, src_lengths)
  context = jit(functools.partial(model.apply, method="encode"))(params, src, src_lengths)
  decode = jit(lambda x, lengths, state, **kw: model.apply(params, x, lengths, state,
                                                           method="decode", **kw))
  got, state = _decode(decode, tgt, pieces, context_BSD=context, context_lengths_B=src_lengths)
  np.testing.assert_allclose(got, full, atol=1e-5)
  cross = state.blocks[0].cross_attention
  assert cross.key_BSGK.shape == (B, 5, 2, D // 4)  # projected once, on the first call
  assert _floats(state) == B * model.state_size(D, L, context_length=5)


def _dependence(jac_BLDBSD):
  """[L, S] table: does output position l depend on input position s (any batch row, feature)?"""
  j = np.abs(np.asarray(jac_BLDBSD))
  per_row = np.stack([j[b, :, :, b] for b in range(j.shape[0])])  # [B, L, D, S, D]
  return per_row.sum(axis=(0, 2, 4)) > 0


def test_decoder_is_causal_through_gradients():
  # ALiBi plus a top-2 MoE with tight capacity: routing order by position keeps this causal too;
  # so does the short convolution.
  cfg = _cfg(position="alibi", moe_experts=4, moe_top_k=2, moe_capacity_factor=0.5, conv_width=3)
  dec = tf.Decoder(cfg)
  x = _x(2, (1, L, D))
  params = _init(dec, x)
  f = lambda x: dec.apply(params, x, mutable=["losses"])[0][0]
  dep = _dependence(jit(jax.jacrev(f))(x))
  np.testing.assert_array_equal(dep, np.tril(np.ones((L, L), bool)))


def test_encoder_padding_changes_no_unpadded_output():
  cfg = _cfg(position="learned", moe_experts=2, moe_capacity_factor=1.0)
  enc = tf.Encoder(cfg)
  lengths = jnp.array([L, 3])
  mask = jnp.arange(L)[None, :] < lengths[:, None]
  x = _x(3)
  params = _init(enc, x, lengths)
  apply = jit(lambda x: enc.apply(params, x, lengths, mutable=["losses"])[0])
  x2 = jnp.where(mask[:, :, None], x, _x(4))
  y, y2 = apply(x), apply(x2)
  np.testing.assert_allclose(y2[0], y[0], atol=1e-6)
  np.testing.assert_allclose(y2[1, :3], y[1, :3], atol=1e-6)
  assert not np.allclose(y2[1, 3:], y[1, 3:])


def test_encoder_decoder_uses_source_and_is_causal_in_target():
  cfg = _cfg(position="sinusoidal", num_layers=1)
  model = tf.EncoderDecoder(cfg)
  src, tgt = _x(5, (1, 5, D)), _x(6, (1, L, D))
  src_lengths = jnp.array([4])
  params = _init(model, src, tgt, src_lengths)
  f = lambda s, t: model.apply(params, s, t, src_lengths)
  jac_src, jac_tgt = jit(jax.jacrev(f, argnums=(0, 1)))(src, tgt)
  dep_src = _dependence(jac_src)
  assert dep_src[:, :4].all()  # every target position reads every real source token...
  assert not dep_src[:, 4].any()  # ...and never the padded one
  dep_tgt = _dependence(jac_tgt)
  np.testing.assert_array_equal(dep_tgt, np.tril(np.ones((L, L), bool)))


def test_every_parameter_gets_a_gradient_in_training_mode():
  cfg = _cfg(position="learned", num_layers=1, moe_experts=2, dropout_rate=0.1,
             attention_dropout_rate=0.1)
  model = tf.EncoderDecoder(cfg)
  src, tgt = _x(10, (B, 5, D)), _x(11)
  params = _init(model, src, tgt)["params"]

  def loss(p, rng):
    y, state = model.apply({"params": p}, src, tgt, deterministic=False, rngs={"dropout": rng},
                           mutable=["losses"])
    return jnp.mean(y ** 2) + sum(jax.tree.leaves(state["losses"]))

  grad = jit(jax.grad(loss))
  grads = grad(params, jax.random.PRNGKey(0))
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    assert np.any(np.asarray(g) != 0), jax.tree_util.keystr(path)
  assert not np.allclose(grads["decoder"]["ln_final"]["scale"],
                         grad(params, jax.random.PRNGKey(1))["decoder"]["ln_final"]["scale"])


def test_captured_attention_rows_sum_to_one_and_moe_losses_are_sown():
  cfg = _cfg(capture_attention=True, moe_experts=4, moe_top_k=2, moe_aux_weight=0.1)
  enc = tf.Encoder(cfg)
  x = _x(7)
  params = _init(enc, x)
  _, state = jit(lambda p, x: enc.apply(p, x, mutable=["intermediates", "losses"]))(params, x)
  weights = jax.tree.leaves(state["intermediates"])
  assert len(weights) == cfg.num_layers
  for w in weights:
    assert w.shape == (B, 4, L, L)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
  losses = jax.tree.leaves(state["losses"])
  assert len(losses) == cfg.num_layers and all(0.0 < float(v) < 0.1 * 4 for v in losses)


def test_bfloat16_compute_runs_and_is_close_to_float32():
  x = _x(8)
  enc32 = tf.Encoder(_cfg(position="rope"))
  params = _init(enc32, x)
  y32 = jit(enc32.apply)(params, x)
  y16 = jit(tf.Encoder(_cfg(position="rope", dtype=jnp.bfloat16)).apply)(params, x)
  assert y16.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(y16, np.float32), y32, atol=0.1)


def test_attention_implementations_agree_inside_the_decoder():
  # ALiBi bias, GQA, causal and padding all pass through to each implementation unchanged.
  # Decoding (the mask form) too, after a padded call.
  x = _x(9)
  lengths = jnp.array([L, 4])
  outs = {}
  for impl in ("naive", "xla", "chunked"):
    dec = tf.Decoder(_cfg(position="alibi", num_kv_heads=2, attention_impl=impl))
    params = _init(dec, x, lengths) if impl == "naive" else params
    step = jit(dec.apply)
    y, state = step(params, x, lengths, None)
    outs[impl] = (y[0], y[1, :4], step(params, x[:, :2], None, state)[0])
  for impl in ("xla", "chunked"):
    for got, want in zip(outs[impl], outs["naive"]):
      np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("kw,match", [
    (dict(num_heads=3), r"d_model=16.*num_heads=3"),
    (dict(num_kv_heads=3), r"num_heads=4.*num_kv_heads=3"),
    (dict(position="relative"), "unknown position 'relative'.*allowed"),
    (dict(attention_impl="flash9"), "attention_impl='flash9' is not an attention"),
    (dict(moe_experts=2, moe_top_k=3), "moe_top_k"),
    (dict(dropout_rate=1.0), "dropout_rate"),
    (dict(window=-1), r"window=-1; must be >= 0"),
    (dict(conv_width=1), r"conv_width=1; allowed: 0 \(no convolution\) or >= 2"),
])
def test_bad_config_raises(kw, match):
  with pytest.raises(ValueError, match=match):
    _cfg(**kw)


def test_bad_inputs_raise_before_compiling():
  key = jax.random.PRNGKey(0)
  with pytest.raises(ValueError, match=r"length 9.*max_len=8"):
    tf.Encoder(_cfg(position="learned")).init(key, _x(0, (1, 9, D)))
  with pytest.raises(ValueError, match=r"input features \(8\).*d_model \(16\)"):
    tf.Encoder(_cfg()).init(key, _x(0, (1, 4, 8)))
  with pytest.raises(ValueError, match=r"lengths_B must have shape \(2,\)"):
    tf.Decoder(_cfg()).init(key, _x(0), jnp.ones((B, L), int))
  with pytest.raises(ValueError, match="state must be None or the StackState"):
    tf.Decoder(_cfg()).init(key, _x(0), None, (jnp.zeros(B),))
  with pytest.raises(ValueError, match="the first decode call .* needs context_BSD"):
    tf.EncoderDecoder(_cfg()).init(key, _x(0), method="decode")
  with pytest.raises(ValueError, match=r"window=4; the Encoder's self-attention is bidirectional"):
    tf.Encoder(_cfg(window=4)).init(key, _x(0))
  with pytest.raises(ValueError, match=r"conv_width=4; the short causal convolution is for decod"):
    tf.Encoder(_cfg(conv_width=4)).init(key, _x(0))


def test_short_conv_reads_its_predecessors_and_starts_from_the_identity_path():
  """y = h + conv(h) by hand (NumPy) for a width-3 kernel, and conv_width=0 adds no parameters."""
  conv = short_conv.ShortConv(3)
  h = _x(20, (1, 5, 4))
  params = conv.init(jax.random.PRNGKey(0), h)
  w = np.asarray(params["params"]["kernel"])  # [3, 4]: tap 2 multiplies h_t
  assert np.all(np.abs(w) <= 3 ** -0.5)
  hp = np.concatenate([np.zeros((1, 2, 4)), np.asarray(h)], axis=1)
  want = np.asarray(h) + sum(hp[:, k:k + 5] * w[k] for k in range(3))
  y, state = conv.apply(params, h)
  np.testing.assert_allclose(y, want, atol=1e-6)
  np.testing.assert_array_equal(state, h[:, 3:])  # the last W - 1 inputs
  assert state.size == conv.state_size(4, 5)
  plain = _init(tf.Decoder(_cfg()), _x(0))["params"]
  assert "conv" not in plain["stack"]["block_0"]
  assert "conv" in _init(tf.Decoder(_cfg(conv_width=2)), _x(0))["params"]["stack"]["block_0"]
