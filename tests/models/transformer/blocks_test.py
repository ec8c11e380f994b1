"""Transformer stacks: decoding equals the full pass, causality and padding through gradients."""

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


@pytest.mark.parametrize("kw", [
    dict(position="learned", num_kv_heads=2),
    dict(position="rope", num_kv_heads=1, moe_experts=4, moe_top_k=2, moe_capacity_factor=4.0),
    dict(position="sinusoidal", conv_width=3),  # the short convolution's state is carried too
])
def test_cached_decoding_equals_full_pass(kw):
  x = _x(1)
  dec = tf.Decoder(_cfg(**kw))
  variables = _init(dec, x, decode=True)
  params = {"params": variables["params"]}
  full = jit(lambda p, x: dec.apply(p, x, mutable=["losses"])[0])(params, x)
  step = jit(functools.partial(dec.apply, decode=True, mutable=["cache", "losses"]))
  cache, outs = variables["cache"], []
  for t in range(L):
    y, state = step({**params, "cache": cache}, x[:, t:t + 1])
    cache = state["cache"]
    outs.append(y)
  np.testing.assert_allclose(jnp.concatenate(outs, axis=1), full, atol=2e-5)


def test_windowed_decoder_decodes_like_its_full_pass():
  x = _x(12)
  dec = tf.Decoder(_cfg(position="rope", num_kv_heads=2, window=2))
  variables = _init(dec, x, decode=True)
  params = {"params": variables["params"]}
  full = jit(dec.apply)(params, x)
  # Positions before the window's length see everything; from there on every layer sees less.
  wide = jit(tf.Decoder(_cfg(position="rope", num_kv_heads=2)).apply)(params, x)
  np.testing.assert_allclose(full[:, :2], wide[:, :2], atol=1e-5)
  assert not np.allclose(full[:, 2:], wide[:, 2:], atol=1e-3)
  step = jit(functools.partial(dec.apply, decode=True, mutable=["cache"]))
  cache, outs = variables["cache"], []
  for t in range(L):
    y, state = step({**params, "cache": cache}, x[:, t:t + 1])
    cache = state["cache"]
    outs.append(y)
  np.testing.assert_allclose(jnp.concatenate(outs, axis=1), full, atol=1e-5)


# Positions the decoder adds itself (learned, sinusoidal: offset by the decoded position) or in
# its self-attention (rope); a padded source (the mask passed on every step) and none.
@pytest.mark.parametrize("position, padded, num_layers", [
    ("learned", True, 2), ("sinusoidal", False, 1), ("rope", True, 1)])
def test_encoder_decoder_cached_decoding_equals_full_pass(position, padded, num_layers):
  cfg = _cfg(position=position, num_kv_heads=2, num_layers=num_layers)
  model = tf.EncoderDecoder(cfg)
  src, tgt = _x(13, (B, 5, D)), _x(14)
  src_mask = jnp.array([[True] * 5, [True] * 3 + [False] * 2]) if padded else None
  params = {"params": _init(model, src, tgt, src_mask)["params"]}
  full = jit(model.apply)(params, src, tgt, src_mask)
  memory = jit(functools.partial(model.apply, method="encode"))(params, src, src_mask)
  decode = functools.partial(model.apply, decode=True, method="decode", mutable=["cache"])
  # The first call sizes the self-attention caches (L) and caches the cross-attention keys/values.
  _, cache = jit(decode)(params, jnp.zeros_like(tgt), memory, src_mask)
  step = jit(decode)
  outs = []
  for t in range(L):
    y, cache = step({**params, **cache}, tgt[:, t:t + 1], memory, src_mask)
    outs.append(y)
  np.testing.assert_allclose(jnp.concatenate(outs, axis=1), full, atol=1e-5)
  assert int(cache["cache"]["decoder"]["block_0"]["self_attention"]["cache_index"]) == L


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
  f = lambda x: dec.apply(params, x, mutable=["losses"])[0]
  dep = _dependence(jit(jax.jacrev(f))(x))
  np.testing.assert_array_equal(dep, np.tril(np.ones((L, L), bool)))


def test_encoder_padding_changes_no_unpadded_output():
  cfg = _cfg(position="learned", moe_experts=2, moe_capacity_factor=1.0)
  enc = tf.Encoder(cfg)
  mask = jnp.arange(L)[None, :] < jnp.array([L, 3])[:, None]
  x = _x(3)
  params = _init(enc, x, mask)
  apply = jit(lambda x: enc.apply(params, x, mask, mutable=["losses"])[0])
  x2 = jnp.where(mask[:, :, None], x, _x(4))
  y, y2 = apply(x), apply(x2)
  np.testing.assert_allclose(y2[0], y[0], atol=1e-6)
  np.testing.assert_allclose(y2[1, :3], y[1, :3], atol=1e-6)
  assert not np.allclose(y2[1, 3:], y[1, 3:])


def test_encoder_decoder_uses_source_and_is_causal_in_target():
  cfg = _cfg(position="sinusoidal", num_layers=1)
  model = tf.EncoderDecoder(cfg)
  src, tgt = _x(5, (1, 5, D)), _x(6, (1, L, D))
  src_mask = jnp.array([[True, True, True, True, False]])
  params = _init(model, src, tgt, src_mask)
  f = lambda s, t: model.apply(params, s, t, src_mask)
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
  x = _x(9)
  mask = jnp.arange(L)[None, :] < jnp.array([L, 4])[:, None]
  outs = {}
  for impl in ("naive", "xla", "chunked"):
    dec = tf.Decoder(_cfg(position="alibi", num_kv_heads=2, attention_impl=impl))
    params = _init(dec, x, mask) if impl == "naive" else params
    outs[impl] = jit(dec.apply)(params, x, mask)
  for impl in ("xla", "chunked"):
    np.testing.assert_allclose(outs[impl], outs["naive"], atol=1e-5)


@pytest.mark.parametrize("kw,match", [
    (dict(num_heads=3), r"d_model=16.*num_heads=3"),
    (dict(num_kv_heads=3), r"num_heads=4.*num_kv_heads=3"),
    (dict(position="relative"), "unknown position 'relative'.*allowed"),
    (dict(attention_impl="flash9"), "unknown attention implementation 'flash9'"),
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
  with pytest.raises(ValueError, match="mask_BL must have shape"):
    tf.Decoder(_cfg()).init(key, _x(0), jnp.ones((B, L + 1), bool))
  with pytest.raises(ValueError, match="decode=True"):
    tf.Decoder(_cfg()).init(key, _x(0), jnp.ones((B, L), bool), decode=True)
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
  np.testing.assert_allclose(conv.apply(params, h), want, atol=1e-6)
  plain = _init(tf.Decoder(_cfg()), _x(0))["params"]
  assert "conv" not in plain["stack"]["block_0"]
  assert "conv" in _init(tf.Decoder(_cfg(conv_width=2)), _x(0))["params"]["stack"]["block_0"]
