"""Associative recall (Graves et al. 2014; Ba et al. 2016; the single-query case of Arora et al. 2024,
"Zoology", MQAR).

Input of length L: ``num_kv_pairs`` key-value pairs ``k1 v1 k2 v2 ..`` (distinct keys), BLANK filler,
and at the last position one of the keys as the query. The target (one class per sequence, a token
id) is the value paired with the queried key. Keys and values come from disjoint alphabets. The
filler between the pairs and the query is the distance knob (L - 2 * num_kv_pairs - 1 positions);
``noise_rate`` puts distractors on it (noise.py).
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
class AssociativeRecallConfig:
  num_kv_pairs: int = 8  # key-value pairs shown before the query
  num_keys: int = 16  # key alphabet (keys within a sequence are distinct, so >= num_kv_pairs)
  num_values: int = 16  # value alphabet
  noise_rate: float = 0.0  # probability that a filler position becomes a distractor

  def __post_init__(self):
    common.check_at_least("num_kv_pairs", self.num_kv_pairs, 1)
    common.check_at_least("num_keys", self.num_keys, self.num_kv_pairs,
                          "vocabulary too small: a sequence needs num_kv_pairs distinct keys")
    common.check_at_least("num_values", self.num_values, 2, "the answer must carry information")
    common.check_noise_rate(self.noise_rate)


def key_value_pairs(rng: jax.Array, batch_size: int, num_pairs: int, num_keys: int,
                    num_values: int) -> tuple[jax.Array, jax.Array]:
  """(keys_BN, values_BN) as token ids: distinct keys per row, values i.i.d."""
  key_rng, value_rng = jax.random.split(rng)
  keys_BN = common.FIRST_CONTENT + common.distinct_symbols(key_rng, batch_size, num_keys, num_pairs)
  first_value = common.FIRST_CONTENT + num_keys
  values_BN = jax.random.randint(value_rng, (batch_size, num_pairs), first_value,
                                 first_value + num_values, dtype=jnp.int32)
  return keys_BN, values_BN


def interleave(keys_BN: jax.Array, values_BN: jax.Array) -> jax.Array:
  """int32[B, 2N]: k1 v1 k2 v2 ..."""
  batch, n = keys_BN.shape
  return jnp.stack([keys_BN, values_BN], axis=-1).reshape(batch, 2 * n)


def sample(config: AssociativeRecallConfig, rng: jax.Array, batch_size: int, length: int) -> dict:
  common.check_batch(batch_size)
  n = config.num_kv_pairs
  common.check_length("associative_recall", length, 2 * n + 1,
                      f"num_kv_pairs={n} pairs and the query")
  pair_rng, query_rng, noise_rng = jax.random.split(rng, 3)
  keys_BN, values_BN = key_value_pairs(pair_rng, batch_size, n, config.num_keys, config.num_values)
  which_B1 = jax.random.randint(query_rng, (batch_size, 1), 0, n)
  query_B = jnp.take_along_axis(keys_BN, which_B1, axis=1)[:, 0]
  inputs_BL = jnp.full((batch_size, length), common.BLANK, jnp.int32)
  inputs_BL = inputs_BL.at[:, :2 * n].set(interleave(keys_BN, values_BN)).at[:, -1].set(query_B)
  return {"inputs": noise.add_noise(noise_rng, inputs_BL, config.noise_rate),
          "targets": jnp.take_along_axis(values_BN, which_B1, axis=1)[:, 0],
          "mask": jnp.ones((batch_size,), jnp.float32)}


def make(config: AssociativeRecallConfig) -> base.Task:
  vocab = common.FIRST_CONTENT + config.num_keys + config.num_values
  return base.Task(name="associative_recall", config=config, vocab_size=vocab, output_size=vocab,
                   output_kind=base.SEQUENCE, sample_fn=functools.partial(sample, config),
                   min_length=2 * config.num_kv_pairs + 1,
                   min_length_fields=("num_kv_pairs",))
