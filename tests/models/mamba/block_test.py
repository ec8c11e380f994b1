"""The Mamba block: every fast path equals the step-by-step reference (outputs, states, gradients),
lengths, causality, decoding in pieces, length 4096, bf16, initialisation and bad inputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models import blocks, registry
from attnlab.models.mamba.config import MambaConfig
from attnlab.models.mamba.block import MambaBlock, MambaState, zero_state
from tests.models.mamba import block_cases

IMPLS = {"linear": "fast", "sequential": "reference"}  # the forms the length test compares

B, L, D, P = 3, 12, 8, 4
H = 2 * D
# "whole": the whole sequence's segmented parallel scan (segments of 4 steps); "default": on CPU
# selective_scan.py's loop over the whole sequence (one chunk); time chunks of 5 steps do not
# divide L = 12 (5 + 5 + 2; the length-4096 test's chunks of 128 do divide it).
FAST = {"whole": dict(time_chunk=0, segment=4), "default": {}, "chunks_of_5": dict(time_chunk=5)}


def _block(**fields):
  return MambaBlock(d_state=P, **fields)


@pytest.fixture(scope="module")
def setup():
  kx, ks, kc, kp = jax.random.split(jax.random.PRNGKey(0), 4)
  x = jax.random.normal(kx, (B, L, D))
  state = MambaState(0.3 * jax.random.normal(ks, (B, P, H)), jax.random.normal(kc, (B, 3, H)))
  params = jax.jit(_block().init)(kp, x)
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


@pytest.mark.parametrize("name", sorted(FAST))
def test_fast_paths_equal_sequential(setup, compiled, reference, name):
  x, lengths, state, params = setup
  got = compiled[name](params, x, lengths, state)
  block_cases.tree_close(got, reference)
  last = got[0][1]
  np.testing.assert_array_equal(np.asarray(last.ssm_BPH[2]), np.asarray(state.ssm_BPH[2]))


@pytest.mark.parametrize("name", ["whole", "chunks_of_5"])
def test_padding_changes_nothing_before_the_end(setup, compiled, name):
  x, lengths, state, params = setup
  (y, last), _ = compiled[name](params, x, lengths, state)
  (y2, last2), _ = compiled[name](params, x.at[1, 6:].set(7.0), lengths, state)
  jax.tree_util.tree_map(np.testing.assert_array_equal, (y, last), (y2, last2))
  assert np.all(np.asarray(y)[1, 6:] == 0.0) and np.all(np.asarray(y)[2] == 0.0)
  # The convolution's state after length 6 holds in_proj's x at positions 3, 4, 5.
  block_cases.close(last.conv_BZH[1], x[1, 3:6] @ params["params"]["in_proj"][:, :H])
  np.testing.assert_array_equal(np.asarray(last.conv_BZH[2]), np.asarray(state.conv_BZH[2]))


def test_outputs_never_depend_on_later_inputs(setup):
  x, _, _, params = setup
  block_cases.causal_gradient_check(_block(time_chunk=5), params, x, 6)


def test_decoding_in_pieces_equals_one_call(setup, compiled):
  x, _, state, params = setup
  full = jnp.full((B,), L, jnp.int32)
  want, _ = compiled["whole"](params, x, full, state)
  # A 5-token prompt, then one token at a time, from the same initial state.
  got = block_cases.decode_in_pieces(_block(), params, x, [5] + [1] * (L - 5), state)
  block_cases.tree_close(got, want)
  shapes = jax.tree_util.tree_map(jnp.shape, zero_state(B, D, d_state=P))
  assert shapes == jax.tree_util.tree_map(jnp.shape, got[1])


def test_length_4096_equals_sequential():
  length = 4096
  x = jax.random.normal(jax.random.PRNGKey(1), (1, length, 4))
  block = MambaBlock(d_state=4, dt_min=0.01, dt_max=1.0)
  params = jax.jit(block.init)(jax.random.PRNGKey(2), x[:, :8])
  out = {}
  for mode in ("linear", "sequential"):  # linear: time chunks of 128 (on CPU, from length 512)
    fn = jax.jit(jax.value_and_grad(lambda p, x, m=mode: jnp.sum(
        MambaBlock(d_state=4, impl=IMPLS[m]).apply(p, x)[0] * jnp.cos(x[..., :1])), argnums=(0, 1)))
    out[mode] = fn(params, x)
  block_cases.tree_close(out["linear"], out["sequential"])


def test_bf16_compute_close_to_float32(setup, reference):
  block_cases.bf16_close_to_float32(_block(dtype=jnp.bfloat16), setup, reference, ("ssm_BPH", "conv_BZH"))


def test_initialisation(setup):
  params = setup[3]["params"]
  assert params["x_proj"].shape == (H, 1 + 2 * P)  # dt_rank = ceil(8 / 16)
  np.testing.assert_allclose(np.exp(params["A_log"]), np.tile(np.arange(1, P + 1), (H, 1)),
                             rtol=1e-6)
  np.testing.assert_array_equal(params["D"], np.ones(H))
  dt = np.asarray(jax.nn.softplus(params["dt_bias"]))  # log-uniform in [dt_min, dt_max]
  assert 0.001 * (1 - 1e-5) <= dt.min() and dt.max() <= 0.1 * (1 + 1e-5)
  assert np.abs(params["dt_proj"]).max() <= 1.0  # uniform in +-dt_rank^-1/2


@pytest.mark.parametrize("fields,change,match", [
    ({}, dict(x=jnp.zeros((B, L))), "rank 3"),
    ({}, dict(x=jnp.zeros((B, L, D + 1))), "feature size 9"),
    ({}, dict(lengths=jnp.array([L + 1, 1, 0])), "lengths must lie in"),
    ({}, dict(state=MambaState(jnp.zeros((B, H, P)), jnp.zeros((B, 3, H)))), "state must have shapes"),
    ({}, dict(state=MambaState(jnp.zeros((B, P, H)), jnp.zeros((B, 4, H)))), "state must have shapes"),
    (dict(impl="parallel"), {}, r"impl='parallel'; allowed"),
    (dict(expand=0), {}, "expand=0; must be an int >= 1"),
    (dict(d_conv=0), {}, "d_conv=0"),
    (dict(dt_rank=-1), {}, "dt_rank=-1"),
    (dict(dt_min=0.2), {}, "dt_min=0.2"),
    (dict(time_chunk=-1), {}, "time_chunk=-1"),
])
def test_bad_inputs_raise(setup, fields, change, match):
  x, lengths, state, params = setup
  with pytest.raises(ValueError, match=match):
    _block(**fields).apply(params, change.get("x", x), change.get("lengths", lengths),
                           change.get("state", state))


@pytest.mark.parametrize("field,value", [("d_state", 0), ("expand", 0), ("d_conv", 0),
                                         ("dt_rank", -2), ("d_ff", -1), ("dropout_rate", 1.0)])
def test_bad_config_names_the_field(field, value):
  with pytest.raises(ValueError, match=f"{field}="):
    (blocks.BlockConfig if field in ("d_ff", "dropout_rate") else MambaConfig)(**{field: value})
  with pytest.raises(ValueError, match=f"model.{field}="):
    registry.make_config({**registry.section("mamba"), field: value})


def test_config_placeholders():
  fields = registry.make_config(registry.section("mamba")).fields()
  assert (fields["dt_rank"], fields["d_ff"]) == (4, 256)  # ceil(64 / 16), 4 * 64
