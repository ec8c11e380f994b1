"""Distractor noise: the article's "sensitivity to noise" as an exact knob.

With ``noise_rate`` p, every BLANK (filler) input position is replaced, independently with
probability p, by a distractor token drawn uniformly from the ``NUM_DISTRACTORS`` reserved ids (see
``common.py``). Fixed-length sequences cannot grow, so "inserting" distractors means they take the
place of filler: content, markers and their positions (and so every dependency distance) are
unchanged, and the answer stays unambiguous because distractors are never content. Answer slots are
BLANK inputs too, so they may carry distractors; the answer is never written into the input.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from attnlab.tasks import common


def add_noise(rng: jax.Array, inputs_BL: jax.Array, noise_rate: float) -> jax.Array:
  """Replaces BLANK positions by distractors with probability ``noise_rate`` (a static float)."""
  common.check_noise_rate(noise_rate)
  if noise_rate == 0.0:
    return inputs_BL
  hit_rng, token_rng = jax.random.split(rng)
  hit_BL = jax.random.bernoulli(hit_rng, noise_rate, inputs_BL.shape) & (inputs_BL == common.BLANK)
  distractor_BL = jax.random.randint(
      token_rng, inputs_BL.shape, common.FIRST_DISTRACTOR,
      common.FIRST_DISTRACTOR + common.NUM_DISTRACTORS, dtype=inputs_BL.dtype)
  return jnp.where(hit_BL, distractor_BL, inputs_BL)

