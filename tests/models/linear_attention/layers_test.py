"""The layers (LinearAttention, GatedLinearAttention, DeltaNet): chunked mode == sequential mode,
causality through gradients, padding, step-by-step decoding with the carried state, the identity
map == the masked product, Based's Taylor map, bf16."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models.linear_attention import feature_maps
from attnlab.models.linear_attention.deltanet import DeltaNet
from attnlab.models.linear_attention.gated import GatedLinearAttention
from attnlab.models.linear_attention.linear import LinearAttention

B, L, D = 2, 16, 8

LAYERS = {
    "elu1": LinearAttention(num_heads=2, chunk=6),
    "taylor": LinearAttention(num_heads=2, feature_map="taylor", key_dim=3, chunk=6),
    "none": GatedLinearAttention(num_heads=2, decay="none", chunk=6),
    "fixed": GatedLinearAttention(num_heads=2, decay="fixed", chunk=6),
    "data": GatedLinearAttention(num_heads=2, decay="data", gate_rank=2, chunk=6),
    "delta": DeltaNet(num_heads=2, chunk=6),
}


def _x(seed=0, shape=(B, L, D)):
  return jax.random.normal(jax.random.PRNGKey(seed), shape)


# Every layer in the equivalence test; the others take the three whose code paths differ (the
# taylor map and decay "none" share elu1's and fixed's).
@pytest.fixture(scope="module", params=["elu1", "fixed", "data", "delta"])
def run(request):
  """A layer's params, jitted apply(params, x, lengths, state), the full pass on x and the same x
  decoded one step at a time (outputs and the state after each step). Every call has the same
  signature (lengths and a zero state passed), so apply compiles twice only: L = 16 and L = 1."""
  module = LAYERS[request.param]
  x = _x(6)
  params = jax.jit(module.init)(jax.random.PRNGKey(1), x)
  if request.param == "data":  # gates far from 1, so that the decay matters within 16 steps
    params["params"]["gate_up"]["bias"] = jnp.full_like(params["params"]["gate_up"]["bias"],
                                                        -40.0)
  apply = jax.jit(lambda p, x, lengths, state: module.apply(p, x, lengths, state))
  full_lengths = jnp.full((B,), L, jnp.int32)
  zero = jnp.zeros_like(jax.eval_shape(apply, params, x, full_lengths, None)[1])
  y, final = apply(params, x, full_lengths, zero)
  ys, states, state = [], [], zero
  for t in range(L):
    y_t, state = apply(params, x[:, t:t + 1], jnp.ones((B,), jnp.int32), state)
    ys.append(y_t)
    states.append(state)
  return dict(name=request.param, params=params, apply=apply, x=x, y=y, final=final, zero=zero,
              decoded=jnp.concatenate(ys, axis=1), states=states)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_chunked_equals_sequential(name):
  module = LAYERS[name]
  x, lengths = _x(2), jnp.array([L, 11])
  params = jax.jit(module.init)(jax.random.PRNGKey(1), x)
  got = jax.jit(module.apply)(params, x, lengths)
  want = jax.jit(module.clone(impl="reference").apply)(params, x, lengths)
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5, err_msg=name)


def test_causal_through_gradients(run):
  apply, params = run["apply"], run["params"]
  x = run["x"][:1]
  jac = jax.jit(jax.jacrev(lambda x: apply(params, x, None, None)[0][0]))(x)[:, :, 0]
  # jac[t, :, s, :] = dy_t / dx_s: zero for every s > t, not zero on the diagonal.
  norms_TS = np.abs(np.asarray(jac)).sum(axis=(1, 3))
  assert np.all(norms_TS[np.triu_indices(L, k=1)] == 0.0)
  assert np.all(np.diag(norms_TS) > 0.0)


def test_padding_changes_nothing_before_the_end(run):
  apply, params, x = run["apply"], run["params"], run["x"]
  lengths = jnp.array([L, 9])
  garbage = jnp.where(jnp.arange(L)[None, :, None] < lengths[:, None, None], x, 1e3 * _x(5))
  y, state = apply(params, x, lengths, run["zero"])
  y_garbage, state_garbage = apply(params, garbage, lengths, run["zero"])
  np.testing.assert_allclose(y_garbage, y, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(state_garbage, state, rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(y[1, 9:], 0.0)
  np.testing.assert_allclose(y[1, :9], run["y"][1, :9], rtol=1e-5, atol=1e-5)
  # The final state is the state at length - 1 (here: after decoding 9 steps).
  np.testing.assert_allclose(state[1], run["states"][8][1], rtol=1e-5, atol=1e-5)


def test_step_by_step_decoding_equals_the_full_pass(run):
  np.testing.assert_allclose(run["decoded"], run["y"], rtol=1e-5, atol=1e-5, err_msg=run["name"])
  np.testing.assert_allclose(run["states"][-1], run["final"], rtol=1e-5, atol=1e-5)


def test_identity_map_without_normaliser_is_the_masked_product():
  module = LinearAttention(num_heads=2, feature_map="identity", normalize=False, chunk=5)
  x = _x(7)
  params = jax.jit(module.init)(jax.random.PRNGKey(8), x)
  y, _ = jax.jit(module.apply)(params, x)
  p = params["params"]
  q, k, v = (jnp.einsum("bld,dnk->blnk", x, p[name]["kernel"]) for name in ("query", "key", "value"))
  causal_11LS = jnp.tril(jnp.ones((L, L)))[None, None]
  o = jnp.einsum("bnls,bsnk->blnk", jnp.einsum("blnk,bsnk->bnls", q, k) * causal_11LS, v)
  np.testing.assert_allclose(y, jnp.einsum("blnk,nkd->bld", o, p["out"]["kernel"]), rtol=1e-5,
                             atol=1e-5)


def test_taylor_map_is_the_second_order_expansion_of_exp():
  q, k = np.random.RandomState(9).randn(2, 5, 16).astype(np.float32)
  s = jnp.sum(q * k, axis=-1) / 4.0  # q . k / sqrt(K), K = 16
  dot = jnp.sum(feature_maps.taylor(q) * feature_maps.taylor(k), axis=-1)
  np.testing.assert_allclose(dot, 1 + s + s ** 2 / 2, rtol=1e-5)
  assert feature_maps.taylor(q).shape == (5, feature_maps.mapped_size("taylor", 16)) == (5, 273)
  assert jnp.all(feature_maps.elu1(q) > 0)


def test_bfloat16_compute_keeps_float32_params_and_state():
  name = "data"
  module = LAYERS[name].clone(dtype=jnp.bfloat16)
  x = _x(11)
  params = jax.jit(module.init)(jax.random.PRNGKey(1), x)
  assert {p.dtype for p in jax.tree_util.tree_leaves(params)} == {jnp.dtype(jnp.float32)}
  apply = jax.jit(module.apply)
  y, state = apply(params, x)
  assert y.dtype == jnp.bfloat16 and state.dtype == jnp.float32
  y32, _ = jax.jit(LAYERS[name].apply)(params, x)
  np.testing.assert_allclose(y.astype(jnp.float32), y32, atol=0.05 * float(jnp.abs(y32).max()))
  assert "bf16" in str(jax.make_jaxpr(module.apply)(params, x))
