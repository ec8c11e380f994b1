"""Initialisation schemes: PyTorch's bounds and distributions for ``torch``, Flax's own initializers
for ``flax``, and the one-line error for a bad name."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models import initializers, registry
from tests.train import helpers
from attnlab.train import config as config_lib

KEY = jax.random.PRNGKey(0)


def test_torch_linear_is_uniform_within_one_over_sqrt_fan_in():
  init = initializers.linear("torch", 64)
  w = np.asarray(init["kernel_init"](KEY, (64, 300)))
  b = np.asarray(init["bias_init"](KEY, (300,)))
  bound = 1 / 8
  assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
  np.testing.assert_allclose(w.std(), bound / math.sqrt(3), rtol=0.03)  # U(-a, a): std a/sqrt(3)
  assert np.abs(b).max() <= bound and b.std() > 0.5 * bound / math.sqrt(3)


def test_torch_attention_input_is_xavier_over_the_fused_matrix():
  init = initializers.attention_input("torch", 64, 3 * 64)
  w = np.asarray(init["kernel_init"](KEY, (64, 64)))
  bound = math.sqrt(6 / (64 + 192))
  assert np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound
  assert not np.any(np.asarray(init["bias_init"](KEY, (64,))))
  assert not np.any(np.asarray(initializers.attention_output("torch", 64)["bias_init"](KEY, (8,))))


def test_embeddings_are_standard_normal_under_torch_and_one_over_sqrt_d_under_flax():
  std = lambda scheme: float(jnp.std(initializers.embedding(scheme)(KEY, (500, 64))))  # noqa: E731
  np.testing.assert_allclose(std("torch"), 1.0, rtol=0.03)
  np.testing.assert_allclose(std("flax"), 1 / 8, rtol=0.03)


@pytest.mark.parametrize("scheme", initializers.SCHEMES)
def test_embed_std_replaces_the_embedding_and_nothing_else(scheme):
  # Mamba's LM wrapper (mamba_ssm), Zoology's and flash-linear-attention's draw N(0, 0.02).
  params = {std: config_lib.build(helpers.tiny_config(
      "mamba", "copy", **{"model.init": scheme, "model.embed_std": std})).model.init(
          KEY, jnp.zeros((1, 4), jnp.int32))["params"] for std in (0.0, 0.02)}
  np.testing.assert_allclose(float(jnp.std(params[0.02]["embed"]["embedding"])), 0.02, rtol=0.15)
  assert float(jnp.std(params[0.0]["embed"]["embedding"])) > 0.1
  rest = lambda p: {k: v for k, v in p.items() if k != "embed"}  # noqa: E731
  jax.tree_util.tree_map(np.testing.assert_array_equal, rest(params[0.0]), rest(params[0.02]))


def test_flax_is_flaxs_own_defaults():
  # The same initializers Flax's Dense and Embed use, so flax-scheme parameters are bit for bit
  # the ones attnlab drew before the scheme existed.
  shape = (16, 24)
  init = initializers.linear("flax", 16)
  np.testing.assert_array_equal(init["kernel_init"](KEY, shape),
                                nn.initializers.lecun_normal()(KEY, shape))
  assert not np.any(np.asarray(init["bias_init"](KEY, (24,))))
  np.testing.assert_array_equal(initializers.embedding("flax")(KEY, shape),
                                nn.linear.default_embed_init(KEY, shape))


@pytest.mark.parametrize("name", sorted(registry.MODELS))
def test_every_model_has_the_field_and_refuses_a_bad_scheme(name):
  assert registry.section(name)["init"] == initializers.DEFAULT
  with pytest.raises(ValueError, match=r"^model\.init='xavier'; allowed: \('torch', 'flax'\)$"):
    config_lib.build(helpers.tiny_config(name, "copy", **{"model.init": "xavier"}))
