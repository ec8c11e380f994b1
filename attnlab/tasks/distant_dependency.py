"""Distant dependency: the article's long-range example made exact (a key token placed exactly ``d``
positions before the query must be reproduced; in the spirit of Hochreiter & Schmidhuber 1997's
long-time-lag experiments).

Input of length L: BLANK filler, one key symbol at position L - 1 - d, and the MARKER (the query) at
the last position L - 1. The target (one class per sequence, a token id) is the key. ``distance`` d
is the knob: the model must carry the key across exactly d steps. ``noise_rate`` puts distractor
tokens (noise.py) on filler positions, before and between key and query; distractors are never
keys, so the answer stays unambiguous.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from attnlab.tasks import base
from attnlab.tasks import common
from attnlab.tasks import noise


@dataclasses.dataclass(frozen=True)
class DistantDependencyConfig:
  distance: int = 16  # d: the key sits exactly d positions before the query
  alphabet_size: int = 8  # number of key symbols
  noise_rate: float = 0.0  # probability that a filler position becomes a distractor

  def __post_init__(self):
    common.check_at_least("distance", self.distance, 1)
    common.check_at_least("alphabet_size", self.alphabet_size, 2, "the key must carry information")
    common.check_noise_rate(self.noise_rate)


def sample(config: DistantDependencyConfig, rng: jax.Array, batch_size: int, length: int) -> dict:
  common.check_batch(batch_size)
  d = config.distance
  common.check_length("distant_dependency", length, d + 1,
                      f"distance={d} is longer than the sequence: the key sits d positions before "
                      "the query at the last position")
  key_rng, noise_rng = jax.random.split(rng)
  key_B = jax.random.randint(key_rng, (batch_size,), common.FIRST_CONTENT,
                             common.FIRST_CONTENT + config.alphabet_size, dtype=jnp.int32)
  inputs_BL = jnp.full((batch_size, length), common.BLANK, jnp.int32)
  inputs_BL = inputs_BL.at[:, length - 1 - d].set(key_B).at[:, length - 1].set(common.MARKER)
  return {"inputs": noise.add_noise(noise_rng, inputs_BL, config.noise_rate), "targets": key_B,
          "mask": jnp.ones((batch_size,), jnp.float32)}


def make(config: DistantDependencyConfig) -> base.Task:
  vocab = common.FIRST_CONTENT + config.alphabet_size
  return base.Task(name="distant_dependency", config=config, vocab_size=vocab, output_size=vocab,
                   output_kind=base.SEQUENCE, sample_fn=functools.partial(sample, config),
                   min_length=config.distance + 1, min_length_fields=("distance",))
