"""The adding problem (Hochreiter & Schmidhuber 1997; in the form of Le, Jaitly & Hinton 2015 and
Arjovsky et al. 2016).

Features input float32[B, L, 2]: channel 0 a value uniform in [0, 1), channel 1 a marker that is 1
at exactly two positions, one drawn in the first half [0, L//2) and one in the second half
[L//2, L). The regression target is the sum of the two marked values, read at the last position.
Predicting the mean (1.0) gives MSE Var(u1 + u2) = 2/12 ~ 0.167: a model must beat that baseline.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from attnlab.tasks import base
from attnlab.tasks import common

BASELINE_MSE = 1.0 / 6.0  # MSE of always predicting the mean target 1.0


@dataclasses.dataclass(frozen=True)
class AddingConfig:
  pass  # the sequence length L is the only knob


def sample(config: AddingConfig, rng: jax.Array, batch_size: int, length: int) -> dict:
  del config
  common.check_batch(batch_size)
  common.check_length("adding", length, 2, "one marker in each half")
  half = length // 2
  value_rng, first_rng, second_rng = jax.random.split(rng, 3)
  values_BL = jax.random.uniform(value_rng, (batch_size, length), jnp.float32)
  first_B = jax.random.randint(first_rng, (batch_size,), 0, half)
  second_B = jax.random.randint(second_rng, (batch_size,), half, length)
  pos_L = jnp.arange(length)[None, :]
  markers_BL = ((pos_L == first_B[:, None]) | (pos_L == second_B[:, None])).astype(jnp.float32)
  return {"inputs": jnp.stack([values_BL, markers_BL], axis=-1),
          "targets": jnp.sum(values_BL * markers_BL, axis=-1),
          "mask": jnp.ones((batch_size,), jnp.float32)}


def make(config: AddingConfig) -> base.Task:
  return base.Task(name="adding", config=config, vocab_size=0, output_size=1,
                   output_kind=base.REGRESSION, sample_fn=functools.partial(sample, config),
                   input_kind=base.FEATURES, input_features=2, min_length=2)
