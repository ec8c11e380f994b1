"""The valid-position mask every mixer takes its per-sequence lengths through."""

from __future__ import annotations

import jax.numpy as jnp


def valid_BL(lengths_B, length: int):
  """True before each sequence's length (right padding); None when lengths_B is None."""
  if lengths_B is None:
    return None
  return jnp.arange(length)[None, :] < jnp.asarray(lengths_B)[:, None]
