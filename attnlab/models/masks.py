"""The valid-position mask every mixer reads its sequence lengths through."""

from __future__ import annotations

import jax.numpy as jnp


def valid_BL(lengths_B, length: int):
  """True before each sequence's length, bool [B, L]; None when lengths_B is None (all valid)."""
  if lengths_B is None:
    return None
  return jnp.arange(length)[None, :] < jnp.asarray(lengths_B)[:, None]
