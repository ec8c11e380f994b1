"""MAD's memorization: a fixed key-to-value map, the same in every example, learned from the
training set (the "facts" of MAD's paper).

Token ids: keys [0, C // 2), values [C // 2, C) with C = vocab_size - 1, insert token C;
``tokens.pad_id`` past the row (and at the last position of an odd length). The map sends key k to
value ``C // 2 + permutation(key(map_seed), C - C // 2)[k]``: a random one-to-one map, fixed by
``map_seed`` as MAD fixes it by its seed. A row of length L holds L // 2 pairs ``key insert``,
keys drawn uniformly; the target at each insert token is its key's value (mask 1 there only).
With MAD's finite training set (``train_examples``, 256 in MAD) the larger vocabularies leave some
keys unseen in training, which caps the test accuracy: that is the difficulty knob.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from attnlab.tasks import base
from attnlab.tasks import common
from attnlab.tasks.mad import tokens

MIN_LENGTH = 2  # one key and its insert token


@dataclasses.dataclass(frozen=True)
class MemorizationConfig:
  vocab_size: int = 256  # MAD's vocabulary, the insert token included (MAD: 256 -> 8192)
  map_seed: int = 12345  # fixes the key-value map (MAD's default seed)

  def __post_init__(self):
    common.check_at_least("vocab_size", self.vocab_size, 3, "a key, a value and the insert token")


def value_of(config: MemorizationConfig) -> jax.Array:
  """int32[num_keys]: the value id of each key id."""
  content = config.vocab_size - 1
  num_keys = content // 2
  order = jax.random.permutation(jax.random.key(config.map_seed), content - num_keys)
  return (num_keys + order[:num_keys]).astype(jnp.int32)


def sample_padded(config: MemorizationConfig, rng: jax.Array, batch_size: int,
                  lengths_B: jax.Array, padded_length: int) -> dict:
  common.check_batch(batch_size)
  common.check_length("mad_memorization", padded_length, MIN_LENGTH, "a key and its insert token")
  content = config.vocab_size - 1
  pairs = (padded_length + 1) // 2
  keys_BJ = base.time_major_randint(rng, batch_size, pairs, 0, content // 2)
  values_BJ = value_of(config)[keys_BJ]
  inputs_BS = jnp.stack([keys_BJ, jnp.full_like(keys_BJ, content)], -1).reshape(batch_size, -1)
  targets_BS = jnp.stack([jnp.zeros_like(keys_BJ), values_BJ], -1).reshape(batch_size, -1)
  t_L = jnp.arange(padded_length)[None, :]
  inside_BL = t_L < (2 * (lengths_B // 2))[:, None]  # whole pairs only
  mask_BL = inside_BL & (t_L % 2 == 1)
  inputs_BL = jnp.where(inside_BL, inputs_BS[:, :padded_length], tokens.pad_id(config.vocab_size))
  targets_BL = jnp.where(mask_BL, targets_BS[:, :padded_length], 0)
  return {"inputs": inputs_BL.astype(jnp.int32), "targets": targets_BL.astype(jnp.int32),
          "mask": mask_BL.astype(jnp.float32), "lengths": lengths_B}


def make(config: MemorizationConfig) -> base.Task:
  return tokens.make("mad_memorization", config, sample_padded, config.vocab_size, MIN_LENGTH)
