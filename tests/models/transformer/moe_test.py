"""Mixture of experts: routing order, drops and aux loss by hand; one expert == dense FFN."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models.transformer import blocks as transformer
from attnlab.models.transformer import moe

# These programs are tiny: compile time dominates, so skip the slow LLVM optimisation passes.
jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


def test_capacity_formula():
  assert moe.capacity(8, 4, 2, 1.25) == 5  # ceil(1.25 * 8 * 2 / 4)
  assert moe.capacity(10, 1, 1, 1.1) == 10  # 1.1 * 10 = 11 exceeds the tokens: capped at 10
  assert moe.capacity(9, 4, 1, 1.0) == 3  # ceil(2.25)
  assert moe.capacity(4, 8, 1, 0.1) == 1


# Hand example, B=2, L=2, E=3, top-2, capacity 2. Choices (first, second) per token:
#   (b0,l0): e0, e1   (b1,l0): e0, e2   (b0,l1): e0, e1   (b1,l1): e1, e0
# Claim order: l0 rank1 [b0 e0->0, b1 e0->1], l0 rank2 [b0 e1->0, b1 e2->0],
#              l1 rank1 [b0 e0 full: dropped, b1 e1->1], l1 rank2 [b0 e1 full: dropped, b1 e0 full].
PROBS = np.array([[[0.6, 0.3, 0.1], [0.7, 0.2, 0.1]],
                  [[0.5, 0.1, 0.4], [0.2, 0.7, 0.1]]], np.float32)


def test_route_hand_example_drops_in_the_specified_order():
  expert, slot, gate = moe.route(jnp.asarray(PROBS), 2, 2)
  np.testing.assert_array_equal(expert, [[[0, 1], [0, 1]], [[0, 2], [1, 0]]])
  np.testing.assert_array_equal(slot, [[[0, 0], [2, 2]], [[1, 0], [1, 2]]])  # 2 = dropped
  np.testing.assert_allclose(gate[0, 0], [0.6 / 0.9, 0.3 / 0.9], rtol=1e-6)


def test_route_padded_tokens_take_no_slot():
  mask = jnp.array([[True, True], [False, True]])
  _, slot, _ = moe.route(jnp.asarray(PROBS), 2, 2, mask)
  # Without (b1,l0): l0 [b0 e0->0, b0 e1->0], l1 rank1 [b0 e0->1, b1 e1->1], rank2 both full.
  np.testing.assert_array_equal(slot, [[[0, 0], [1, 2]], [[2, 2], [1, 2]]])


def test_top1_gate_is_router_probability():
  _, _, gate = moe.route(jnp.asarray(PROBS), 1, 4)
  np.testing.assert_allclose(gate[..., 0], [[0.6, 0.7], [0.5, 0.7]])


def test_aux_loss_hand_computation():
  expert, _, _ = moe.route(jnp.asarray(PROBS), 2, 2)
  # First choices: e0, e0, e0, e1 -> f = [3/4, 1/4, 0]; P = mean probs over the 4 tokens.
  f = np.array([0.75, 0.25, 0.0])
  p = PROBS.reshape(4, 3).mean(0)
  want = 3 * np.sum(f * p)
  np.testing.assert_allclose(moe.load_balancing_loss(jnp.asarray(PROBS), expert), want, rtol=1e-6)
  # Padding: only (b0,l0), (b0,l1), (b1,l1) count.
  mask = jnp.array([[True, True], [False, True]])
  f = np.array([2 / 3, 1 / 3, 0.0])
  p = PROBS.reshape(4, 3)[[0, 1, 3]].mean(0)
  np.testing.assert_allclose(moe.load_balancing_loss(jnp.asarray(PROBS), expert, mask),
                             3 * np.sum(f * p), rtol=1e-6)


def test_one_expert_equals_dense_feed_forward():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 8))
  dense = transformer.FeedForward(d_ff=16)
  dp = jit(dense.init)(jax.random.PRNGKey(1), x)["params"]
  layer = moe.MoEFeedForward(num_experts=1, d_ff=16, top_k=1, capacity_factor=1.0)
  mp = jit(layer.init)(jax.random.PRNGKey(2), x)["params"]
  mp = dict(mp, wi=dp["wi"]["kernel"][None], bi=dp["wi"]["bias"][None],
            wo=dp["wo"]["kernel"][None], bo=dp["wo"]["bias"][None])
  y, state = jit(functools.partial(layer.apply, mutable=["losses"]))({"params": mp}, x)
  np.testing.assert_allclose(y, jit(dense.apply)({"params": dp}, x), atol=1e-5)
  # One expert: f = P = 1, so the loss is exactly the weight.
  np.testing.assert_allclose(state["losses"]["moe_aux_loss"][0], 0.01, rtol=1e-6)


def _skewed_layer_and_params(x):
  """Two experts; the router sends every (positive) token to expert 0 with probability p."""
  layer = moe.MoEFeedForward(num_experts=2, d_ff=8, top_k=1, capacity_factor=1.0, aux_weight=0.5)
  params = jit(layer.init)(jax.random.PRNGKey(3), x)["params"]
  router = jnp.stack([jnp.ones(x.shape[-1]), -jnp.ones(x.shape[-1])], axis=1) * 0.1
  return layer, dict(params, router=router)


def test_tokens_over_capacity_are_dropped_and_aux_loss_is_sown():
  x = jnp.abs(jax.random.normal(jax.random.PRNGKey(4), (1, 4, 6))) + 0.1
  layer, params = _skewed_layer_and_params(x)
  y, state = jit(functools.partial(layer.apply, mutable=["losses"]))({"params": params}, x)
  # Capacity ceil(1.0 * 4 / 2) = 2: positions 0 and 1 get expert 0, positions 2 and 3 are dropped.
  np.testing.assert_array_equal(y[0, 2:], 0.0)
  logits = np.asarray(x[0] @ params["router"])
  probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  p = {k: np.asarray(v) for k, v in params.items()}
  h = jax.nn.gelu(np.asarray(x[0, :2]) @ p["wi"][0] + p["bi"][0])
  want = (np.asarray(h) @ p["wo"][0] + p["bo"][0]) * probs[:2, :1]
  np.testing.assert_allclose(y[0, :2], want, atol=1e-5)
  # Aux loss: f = [1, 0], P = mean probs; times aux_weight 0.5.
  np.testing.assert_allclose(state["losses"]["moe_aux_loss"][0], 0.5 * 2 * probs[:, 0].mean(),
                             rtol=1e-5)


def test_gradients_reach_router_and_experts():
  x = jax.random.normal(jax.random.PRNGKey(5), (2, 4, 6))
  layer = moe.MoEFeedForward(num_experts=4, d_ff=8, top_k=2, capacity_factor=2.0)
  params = jit(layer.init)(jax.random.PRNGKey(6), x)["params"]

  def loss(p):
    y, state = layer.apply({"params": p}, x, mutable=["losses"])
    return jnp.sum(y ** 2) + state["losses"]["moe_aux_loss"][0]

  grads = jit(jax.grad(loss))(params)
  for name, g in grads.items():
    assert np.any(np.asarray(g) != 0), name


@pytest.mark.parametrize("kwargs", [dict(num_experts=2, top_k=3), dict(num_experts=0),
                                    dict(num_experts=2, capacity_factor=0.0)])
def test_bad_config_raises(kwargs):
  with pytest.raises(ValueError):
    moe.MoEFeedForward(d_ff=4, **kwargs).init(jax.random.PRNGKey(0), jnp.ones((1, 2, 3)))
