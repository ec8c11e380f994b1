"""Checks shared by the layers and the registered configs: a ValueError naming the field (or input)
and what is allowed, raised before anything is compiled."""

from __future__ import annotations

import jax.numpy as jnp

from attnlab.models import checks
from attnlab.models.linear_attention import feature_maps

DECAYS = ("none", "fixed", "data")  # no decay, RetNet's fixed per-head gamma, GLA's gate


def check_choice(field: str, value, allowed) -> None:
  if value not in allowed:
    raise ValueError(f"{field}={value!r}; allowed: {tuple(allowed)}")


def check_positive(field: str, value) -> None:
  if isinstance(value, bool) or not isinstance(value, int) or value < 1:
    raise ValueError(f"{field}={value!r}; must be an int >= 1")


def check_bool(field: str, value) -> None:
  if not isinstance(value, bool):
    raise ValueError(f"{field}={value!r}; allowed: (True, False)")


def check_heads(d_model: int, num_heads: int) -> None:
  check_positive("num_heads", num_heads)
  if d_model % num_heads:
    raise ValueError(f"num_heads={num_heads}; must divide d_model={d_model}")


def check_linear(d_model, num_heads, feature_map, key_dim, chunk, impl="fast") -> None:
  check_heads(d_model, num_heads)
  check_choice("feature_map", feature_map, feature_maps.FEATURE_MAPS)
  if isinstance(key_dim, bool) or not isinstance(key_dim, int) or key_dim < 0:
    raise ValueError(f"key_dim={key_dim!r}; must be an int >= 1 (0: the default)")
  check_positive("chunk", chunk)
  check_choice("impl", impl, checks.IMPLS)


def check_gated(d_model, num_heads, decay, chunk, gate_rank, gate_temperature,
                impl="fast") -> None:
  check_heads(d_model, num_heads)
  check_choice("decay", decay, DECAYS)
  check_positive("chunk", chunk)
  check_positive("gate_rank", gate_rank)
  if not gate_temperature > 0:
    raise ValueError(f"gate_temperature={gate_temperature!r}; must be > 0")
  check_choice("impl", impl, checks.IMPLS)


def check_delta(d_model, num_heads, chunk, impl="fast") -> None:
  check_heads(d_model, num_heads)
  check_positive("chunk", chunk)
  check_choice("impl", impl, checks.IMPLS)


def default_key_dim(feature_map: str, key_dim: int, d_model: int, num_heads: int) -> int:
  """key_dim 0 -> taylor: Based's 16; the others: the head size d_model / num_heads."""
  if key_dim:
    return key_dim
  return feature_maps.TAYLOR_KEY_DIM if feature_map == "taylor" else d_model // num_heads


def check_inputs(name, x_BLD, lengths_B, state_BNKU, state_shape) -> None:
  """x rank 3, lengths [batch] within [0, L] (when concrete), the state [batch, *state_shape]."""
  if jnp.ndim(x_BLD) != 3:
    raise ValueError(f"{name} input x must be rank 3 [batch, length, features]; "
                     f"got shape {jnp.shape(x_BLD)}")
  batch, steps, _ = x_BLD.shape
  if lengths_B is not None:
    checks.check_lengths(name, lengths_B, batch, steps)
  want = (batch,) + tuple(state_shape)
  if state_BNKU is not None and tuple(jnp.shape(state_BNKU)) != want:
    raise ValueError(f"{name} initial state must have shape {list(want)} [batch, heads, "
                     f"key features, value features]; got {list(jnp.shape(state_BNKU))}")
