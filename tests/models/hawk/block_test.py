"""Hawk's recurrent block: the paper's equations run step by step in float64 NumPy; every fast path
equals the step-by-step reference (outputs, states, gradients); lengths, causality, decoding in
pieces, length 4096, bf16, initialisation and bad inputs."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models import blocks, registry
from attnlab.models.hawk import rg_lru
from attnlab.models.hawk.config import HawkConfig
from attnlab.models.hawk.block import HawkBlock, HawkState, zero_state
from tests.models.mamba import block_cases

IMPLS = {"linear": "fast", "sequential": "reference"}  # the forms the length test compares

B, L, D, H, N = 3, 12, 6, 8, 2  # lru_width H in N = 2 gate blocks
# "whole" (the default at this length): the whole sequence's segmented parallel scan (segments of
# 4 steps); time chunks of 5 steps do not divide L = 12 (5 + 5 + 2; the length-4096 test's chunks
# of 128 do divide it).
FAST = {"whole": dict(time_chunk=0, segment=4), "chunks_of_5": dict(time_chunk=5)}


def _block(**fields):
  return HawkBlock(**{"lru_width": H, "num_heads": N, **fields})


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def _reference(params, x, lengths, state):
  """De et al. (2024) eqs. 1-4 and the recurrent block of their Figure 2, float64, step by step."""
  p = jax.tree_util.tree_map(lambda v: np.asarray(v, np.float64), params["params"])
  dense = lambda v, name: v @ p[name]["kernel"] + p[name]["bias"]  # noqa: E731
  x = np.asarray(x, np.float64)
  v = dense(x, "linear_y")
  gate = 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)))  # tanh GeLU
  xr = dense(x, "linear_x")
  dense_gate = lambda w: np.block(  # noqa: E731  the block-diagonal [H, H] matrix
      [[w[i] if i == j else np.zeros_like(w[i]) for j in range(N)] for i in range(N)])
  w_a, w_x = dense_gate(p["a_gate"]), dense_gate(p["x_gate"])
  log_a_base = -np.log1p(np.exp(-p["Lambda"]))  # log sigmoid(Lambda)
  h, conv = np.array(state[0], np.float64), np.array(state[1], np.float64)
  ys = np.zeros(x.shape[:2] + (H,))
  for t in range(x.shape[1]):
    live = (t < np.asarray(lengths))[:, None]
    window = np.concatenate([conv, xr[:, t:t + 1]], axis=1)  # the last d_conv inputs
    c_t = np.einsum("bkh,kh->bh", window, p["conv_kernel"]) + p["conv_bias"]
    r = _sigmoid(c_t @ w_a + p["a_gate_bias"])
    i = _sigmoid(c_t @ w_x + p["x_gate_bias"])
    a = np.exp(8.0 * r * log_a_base)  # a^(c r)
    new_h = a * h + np.sqrt(1 - a ** 2) * (i * c_t)
    h = np.where(live, new_h, h)
    conv = np.where(live[..., None], window[:, 1:], conv)
    ys[:, t] = np.where(live, new_h, 0.0)
  y = (gate * ys) @ p["linear_out"]["kernel"] + p["linear_out"]["bias"]
  valid = (np.arange(x.shape[1])[None, :] < np.asarray(lengths)[:, None])[..., None]
  return np.where(valid, y, 0.0), h, conv


@pytest.fixture(scope="module")
def setup():
  kx, ks, kc, kp, kb = jax.random.split(jax.random.PRNGKey(0), 5)
  x = jax.random.normal(kx, (B, L, D))
  state = HawkState(jax.random.normal(ks, (B, H)), jax.random.normal(kc, (B, 3, H)))
  params = jax.jit(_block().init)(kp, x)
  # Non-zero gate biases and a conv far from its small initialisation: every term matters.
  biases = jax.random.normal(kb, (3, H))
  params["params"].update(a_gate_bias=biases[0], x_gate_bias=biases[1], conv_bias=biases[2],
                          conv_kernel=params["params"]["conv_kernel"] * 10.0)
  return x, jnp.array([L, 6, 0]), state, params


@pytest.fixture(scope="module")
def compiled():
  """name -> jitted (params, x, lengths, state) -> ((y, state), grads): compiled once each."""
  fields = {"sequential": dict(impl="reference"), **FAST}
  return {name: block_cases.outputs_and_grads(_block(**f)) for name, f in fields.items()}


@pytest.fixture(scope="module")
def reference(setup, compiled):
  x, lengths, state, params = setup
  return compiled["sequential"](params, x, lengths, state)


def test_sequential_equals_the_papers_equations(setup, reference):
  x, lengths, state, params = setup
  (y, last), _ = reference
  want_y, want_h, want_conv = _reference(params, x, lengths, state)
  block_cases.close(y, want_y)
  block_cases.close(last.lru_BH, want_h)
  block_cases.close(last.conv_BZH, want_conv)


@pytest.mark.parametrize("name", sorted(FAST))
def test_fast_paths_equal_sequential(setup, compiled, reference, name):
  x, lengths, state, params = setup
  got = compiled[name](params, x, lengths, state)
  block_cases.tree_close(got, reference)
  np.testing.assert_array_equal(np.asarray(got[0][1].lru_BH[2]), np.asarray(state.lru_BH[2]))


@pytest.mark.parametrize("name", ["whole", "chunks_of_5"])
def test_padding_changes_nothing_before_the_end(setup, compiled, name):
  x, lengths, state, params = setup
  (y, last), _ = compiled[name](params, x, lengths, state)
  (y2, last2), _ = compiled[name](params, x.at[1, 6:].set(7.0), lengths, state)
  jax.tree_util.tree_map(np.testing.assert_array_equal, (y, last), (y2, last2))
  assert np.all(np.asarray(y)[1, 6:] == 0.0) and np.all(np.asarray(y)[2] == 0.0)


def test_outputs_never_depend_on_later_inputs(setup):
  x, _, _, params = setup
  block_cases.causal_gradient_check(_block(time_chunk=5), params, x, 6)


def test_decoding_in_pieces_equals_one_call(setup, compiled):
  x, _, state, params = setup
  want, _ = compiled["whole"](params, x, jnp.full((B,), L, jnp.int32), state)
  got = block_cases.decode_in_pieces(_block(time_chunk=0), params, x, [5] + [1] * (L - 5), state)
  block_cases.tree_close(got, want)
  assert (jax.tree_util.tree_map(jnp.shape, zero_state(B, H))
          == jax.tree_util.tree_map(jnp.shape, got[1]))


def test_length_4096_equals_sequential():
  x = jax.random.normal(jax.random.PRNGKey(1), (1, 4096, 4))
  params = jax.jit(HawkBlock(a_min=0.999, a_max=0.9999).init)(jax.random.PRNGKey(2), x[:, :8])
  out = {}
  for mode in ("linear", "sequential"):  # linear: time chunks of 128 (on CPU, from length 512)
    fn = jax.jit(jax.value_and_grad(lambda p, x, m=mode: jnp.sum(
        HawkBlock(impl=IMPLS[m]).apply(p, x)[0] * jnp.cos(x[..., :1])), argnums=(0, 1)))
    out[mode] = fn(params, x)
  block_cases.tree_close(out["linear"], out["sequential"])


def test_gradients_finite_where_the_recurrence_gate_underflows(setup, compiled):
  # r = sigmoid(-200) = 0 in float32: a = 1 and sqrt(1 - a^2) = 0, whose exact derivative is
  # infinite; the bounded one keeps every gradient finite.
  x, lengths, state, params = setup
  params = jax.tree_util.tree_map(lambda v: v, params)  # a copy: the fixture is shared
  params["params"]["a_gate_bias"] = jnp.full((H,), -200.0)
  _, grads = compiled["chunks_of_5"](params, x, lengths, state)
  assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))


def test_bf16_compute_close_to_float32(setup, reference):
  block_cases.bf16_close_to_float32(_block(dtype=jnp.bfloat16), setup, reference, ("lru_BH", "conv_BZH"))


def test_lambda_initialisation(setup):
  assert setup[3]["params"]["Lambda"].shape == (H,)
  assert setup[3]["params"]["a_gate"].shape == (N, H // N, H // N)
  lam = rg_lru.lambda_init(0.9, 0.999)(jax.random.PRNGKey(3), (4000,))
  a_c = np.asarray(jax.nn.sigmoid(lam), np.float64) ** 8
  assert a_c.min() >= 0.9 - 1e-6 and a_c.max() <= 0.999 + 1e-6
  assert abs(a_c.mean() - 0.9495) < 0.003 and abs(np.median(a_c) - 0.9495) < 0.005  # uniform


@pytest.mark.parametrize("fields,change,match", [
    ({}, dict(x=jnp.zeros((B, L))), "rank 3"),
    ({}, dict(x=jnp.zeros((B, L, D + 1))), "feature size 7"),
    ({}, dict(lengths=jnp.array([L, -1, 0])), "lengths must lie in"),
    ({}, dict(state=HawkState(jnp.zeros((B, H + 1)), jnp.zeros((B, 3, H)))), "state must have shapes"),
    (dict(impl="log"), {}, r"impl='log'; allowed"),
    (dict(num_heads=3), {}, "num_heads=3; must divide lru_width=8"),
    (dict(d_conv=0), {}, "d_conv=0"),
    (dict(a_min=0.99, a_max=0.9), {}, "a_min=0.99"),
    (dict(a_max=1.0), {}, "a_max=1.0"),
    (dict(c=0.0), {}, "c=0.0"),
    (dict(segment=-1), {}, "segment=-1"),
])
def test_bad_inputs_raise(setup, fields, change, match):
  x, lengths, state, params = setup
  with pytest.raises(ValueError, match=match):
    _block(**fields).apply(params, change.get("x", x), change.get("lengths", lengths),
                           change.get("state", state))


@pytest.mark.parametrize("field,value", [("lru_width", -1), ("num_heads", 0), ("d_conv", 0),
                                         ("d_ff", -1), ("dropout_rate", 1.0)])
def test_bad_config_names_the_field(field, value):
  with pytest.raises(ValueError, match=f"{field}="):
    (blocks.BlockConfig if field in ("d_ff", "dropout_rate") else HawkConfig)(**{field: value})
  with pytest.raises(ValueError, match=f"model.{field}="):
    registry.make_config({**registry.section("hawk"), field: value})


def test_config_num_heads_must_divide_the_width():
  with pytest.raises(ValueError, match="model.num_heads=3; must divide"):
    registry.make_config({**registry.section("hawk"), "num_heads": 3})
