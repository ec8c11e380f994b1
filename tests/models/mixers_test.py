"""The mixer contract (models/__init__.py), checked for every mixer the registry builds: the fast
form equals the step-by-step reference (outputs, state and gradients), padding changes nothing
before each sequence's end, outputs never depend on later inputs, decoding in pieces equals one
pass (also after a padded first piece), and ``state_size`` counts the floats of the state returned.

The families' own tests go further (chunk and time-chunk boundaries, PyTorch and NumPy references,
bf16); these hold every mixer, present and future, to the same few promises.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models import registry

B, L, D = 2, 7, 8
LENGTHS = np.array([L, 4])
CUT = 3  # decoding: positions [0, CUT) in the first call, the rest in the second


def mixer_names() -> list[str]:
  """Every registered name whose model is a stack of mixers (the others have blocks of their own)."""
  return [n for n, e in sorted(registry.MODELS.items()) if e.backbone is None]


def build(name: str, impl: str = "fast"):
  """The mixer of model ``name`` at width D (heads 2, chunks of 3 so that chunk boundaries fall
  inside L), and its initialised parameters."""
  section = {**registry.section(name), "d_model": D, "num_layers": 1}
  if name == "hybrid":  # its own mixer: causal attention with RoPE (the others have their names)
    section["layers"] = "attention"
  for field, value in (("num_heads", 2), ("chunk", 3), ("impl", impl)):
    if field in section:
      section[field] = value
  _, cfg = registry.make_config(section).config.layers[0]
  module = cfg.module(D, dtype=jnp.float32, init="torch", name=None)
  x = jax.random.normal(jax.random.PRNGKey(1), (B, L, D))
  params = jax.jit(module.init)(jax.random.PRNGKey(0), x)
  return module, params


def _floats(state) -> int:
  """Floats per sequence in a state pytree (complex numbers count two; bookkeeping such as
  attention's valid slots and token counts is not state)."""
  leaves = [x for x in jax.tree_util.tree_leaves(state) if jnp.issubdtype(x.dtype, jnp.inexact)]
  return sum(x.size * (2 if jnp.iscomplexobj(x) else 1) for x in leaves) // B


def _x(seed=2, length=L):
  return jax.random.normal(jax.random.PRNGKey(seed), (B, length, D))


def _close(got, want, atol=1e-5):
  jax.tree_util.tree_map(lambda g, w: np.testing.assert_allclose(
      np.asarray(g), np.asarray(w), rtol=1e-5, atol=atol), got, want)


def _valid(y_BLD, lengths):
  return np.where((np.arange(y_BLD.shape[1])[None, :] < np.asarray(lengths)[:, None])[..., None],
                  np.asarray(y_BLD), 0.0)


@pytest.fixture(scope="module", params=mixer_names())
def mixer(request):
  module, params = build(request.param)
  return request.param, module, params, jax.jit(module.apply)


def test_fast_equals_reference_with_gradients(mixer):
  name, module, params, _ = mixer
  if not hasattr(module, "impl"):
    pytest.skip(f"{name} has no reference form")
  reference = module.clone(impl="reference")
  x, lengths = _x(), jnp.asarray(LENGTHS)

  def loss(m):
    def f(p, x):
      y, state = m.apply(p, x, lengths)
      w = jnp.cos(jnp.arange(y.size, dtype=jnp.float32)).reshape(y.shape)
      valid = jnp.arange(L)[None, :, None] < lengths[:, None, None]
      return jnp.sum(jnp.where(valid, y * w, 0.0)) + sum(
          jnp.sum(jnp.abs(s) ** 2) for s in jax.tree_util.tree_leaves(state))
    return jax.jit(jax.value_and_grad(f, argnums=(0, 1)))

  got_y, got_state = jax.jit(module.apply)(params, x, lengths)
  want_y, want_state = jax.jit(reference.apply)(params, x, lengths)
  _close(_valid(got_y, LENGTHS), _valid(want_y, LENGTHS))
  _close(got_state, want_state)
  _close(loss(module)(params, x), loss(reference)(params, x), atol=1e-4)


def test_padding_changes_nothing_before_the_end(mixer):
  _, _, params, apply = mixer
  x, lengths = _x(), jnp.asarray(LENGTHS)
  garbage = jnp.where(jnp.arange(L)[None, :, None] < lengths[:, None, None], x, 1e3 * _x(5))
  y, state = apply(params, x, lengths)
  y_garbage, state_garbage = apply(params, garbage, lengths)
  _close(_valid(y_garbage, LENGTHS), _valid(y, LENGTHS))
  _close(state_garbage, state)
  # The short row equals that sequence run alone, unpadded.
  y_alone, state_alone = jax.jit(mixer[1].apply)(params, x[1:, :LENGTHS[1]])
  _close(y[1:, :LENGTHS[1]], y_alone)
  row = jax.tree_util.tree_map(lambda s: s[1:], state)
  if _shapes(row) == _shapes(state_alone):  # attention keeps a slot per token of the call: its
    _close(row, state_alone)  # states continue alike (test_decoding_after_a_padded_piece...)


def _shapes(tree):
  return [x.shape for x in jax.tree_util.tree_leaves(tree)]


def test_outputs_never_read_later_inputs(mixer):
  _, _, params, apply = mixer
  x = _x()
  jac = jax.jit(jax.jacrev(lambda x: apply(params, x)[0][0]))(x)  # [L, D, B, L, D]
  norms_TS = np.abs(np.asarray(jac[:, :, 0])).sum(axis=(1, 3))
  assert np.all(norms_TS[np.triu_indices(L, k=1)] == 0.0)
  assert np.all(np.diag(norms_TS) > 0.0)


def test_decoding_in_pieces_equals_one_pass(mixer):
  _, _, params, apply = mixer
  x = _x()
  y, state = apply(params, x)
  y1, state1 = apply(params, x[:, :CUT])
  y2, state2 = apply(params, x[:, CUT:], None, state1)
  _close(jnp.concatenate([y1, y2], axis=1), y)
  _close(state2, state)


def test_decoding_after_a_padded_piece_continues_each_sequence(mixer):
  _, module, params, apply = mixer
  x, rest = _x(), _x(7, length=L - CUT)
  first = jnp.array([CUT, 1])  # the second sequence has one token in the first call
  _, state1 = apply(params, x[:, :CUT], first)
  y2, _ = apply(params, rest, None, state1)
  for b, n in enumerate(np.asarray(first)):
    whole = jnp.concatenate([x[b:b + 1, :n], rest[b:b + 1]], axis=1)
    y_whole, _ = jax.jit(module.apply)(params, whole)
    _close(y2[b:b + 1], y_whole[:, n:])


def test_state_size_counts_the_state(mixer):
  _, module, params, apply = mixer
  _, state = apply(params, _x())
  assert module.state_size(D, L) == _floats(state)
