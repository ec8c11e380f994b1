"""The registered Transformer backbones: y_BLD only, and the state size of each kind."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from attnlab.models import registry
from attnlab.models.transformer.backbone import TransformerBackbone

D, L = 16, 6


def _section(name, **kw):
  return {**registry.section(name), "d_model": D, "num_heads": 4, "num_layers": 2, "max_len": L,
          **kw}


@pytest.mark.parametrize("name, kw, want", [
    ("transformer", {}, None),
    ("decoder", {}, 2 * 2 * L * D),  # 2 layers x keys and values of L tokens
    ("decoder", {"num_kv_heads": 1, "conv_width": 3}, 2 * (2 * L * D // 4 + 2 * D)),
    ("swa", {"window": 4}, 2 * 2 * 3 * D),  # the last window - 1 tokens
    ("encoder_decoder", {}, None),  # its encoder reads the whole input: no token-by-token state
])
def test_state_size_per_kind(name, kw, want):
  backbone = registry.backbone(_section(name, **kw))
  assert isinstance(backbone, TransformerBackbone)
  assert backbone.state_size(D, L) == want


def test_returns_the_outputs_only():
  backbone = registry.backbone(_section("decoder"))
  x = jnp.zeros((2, L, D))
  params = backbone.init(jax.random.PRNGKey(0), x, jnp.array([L, 3]))
  assert backbone.apply(params, x, jnp.array([L, 3])).shape == (2, L, D)
