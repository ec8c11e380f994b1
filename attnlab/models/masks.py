"""The valid-position mask every mixer derives from its sequences' lengths (right padding)."""

from __future__ import annotations

import jax.numpy as jnp


def valid_BL(lengths_B, length: int):
  """bool[B, L]: True before each sequence's length; None when lengths_B is None (all valid)."""
  if lengths_B is None:
    return None
  return jnp.arange(length)[None, :] < lengths_B[:, None]
