"""Schedules by hand, the weight-decay mask, clipping."""

from __future__ import annotations

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from attnlab.train import optim


def _cfg(**kw):
  base = dict(name="adamw", learning_rate=1.0, warmup_steps=10, decay="cosine",
              weight_decay=0.1, clip_norm=0.0, grad_accum_steps=1, momentum=0.0)
  return ml_collections.ConfigDict({**base, **kw})


def test_warmup_then_cosine():
  s = optim.make_schedule(_cfg(), 110)
  np.testing.assert_allclose([s(0), s(5), s(10), s(60), s(110)],
                             [0.0, 0.5, 1.0, 0.5, 0.0], atol=1e-6)


def test_linear_and_constant():
  lin = optim.make_schedule(_cfg(decay="linear", warmup_steps=0), 100)
  np.testing.assert_allclose([lin(0), lin(25), lin(100)], [1.0, 0.75, 0.0], atol=1e-6)
  const = optim.make_schedule(_cfg(decay="constant", warmup_steps=4), 100)
  np.testing.assert_allclose([const(2), const(4), const(99)], [0.5, 1.0, 1.0], atol=1e-6)


def test_decay_mask_skips_biases_norms_and_embeddings():
  params = {"embed": {"embedding": jnp.ones((5, 3))},
            "backbone": {"dense": {"kernel": jnp.ones((3, 3)), "bias": jnp.ones(3)},
                         "norm": {"scale": jnp.ones(3)}},
            "head": {"kernel": jnp.ones((3, 2))}}
  mask = optim.decay_mask(params)
  assert mask == {"embed": {"embedding": False},
                  "backbone": {"dense": {"kernel": True, "bias": False}, "norm": {"scale": False}},
                  "head": {"kernel": True}}


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_weight_decay_moves_only_masked_params(name):
  # Zero gradients: only decay can move a parameter, and only the masked ones.
  tx, _ = optim.make_optimizer(_cfg(name=name, warmup_steps=0, decay="constant",
                                    learning_rate=0.1), 10)
  params = {"w": {"kernel": jnp.ones((2, 2))}, "b": {"bias": jnp.ones(2)}}
  zeros = {"w": {"kernel": jnp.zeros((2, 2))}, "b": {"bias": jnp.zeros(2)}}
  updates, _ = tx.update(zeros, tx.init(params), params)
  assert float(jnp.abs(updates["w"]["kernel"]).sum()) > 0
  assert float(jnp.abs(updates["b"]["bias"]).sum()) == 0


def test_clipping_bounds_the_update():
  tx, _ = optim.make_optimizer(_cfg(name="sgd", warmup_steps=0, decay="constant", weight_decay=0,
                                    clip_norm=1.0), 10)
  params = {"kernel": jnp.zeros((2, 2))}
  updates, _ = tx.update({"kernel": jnp.full((2, 2), 100.0)}, tx.init(params), params)
  np.testing.assert_allclose(float(jnp.linalg.norm(updates["kernel"])), 1.0, rtol=1e-6)


def test_unknown_optimizer():
  with pytest.raises(ValueError, match=r"optimizer.name='lamb'; allowed: \('adamw', 'adam', 'sgd'\)"):
    optim.make_optimizer(_cfg(name="lamb"), 10)
