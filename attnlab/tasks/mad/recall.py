"""MAD's in-context recall and noisy in-context recall (multi-query, as MAD's benchmark runs them).

Token ids, with C = vocab_size - noise_vocab_size content ids: keys [0, C // 2), values
[C // 2, C), noise [C, vocab_size); ``tokens.pad_id`` fills. A row of length L holds MAD's instance
of ``seq_len = 2P`` tokens, P = (L + 1) // 2 key-value pairs, as next-token inputs (its first 2P - 1
tokens, after one leading filler when L is even):

  pairs 0 .. P-2   a key drawn uniformly, then its value: drawn uniformly the first time the key
                   appears in the row, the same value every later time (the row's own key-value map);
                   noisy recall replaces each pair, with probability ``frac_noise``, by two noise
                   tokens (one pair, drawn uniformly, is never noise, so some key is always shown);
  pair  P-1        the final query: a key drawn uniformly among the distinct keys shown, and its value.

Targets (mask 1) are the values of keys shown before in the row, final query included: at the
position of each such key the next token is its value. These are the positions MAD scores.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from attnlab.tasks import base
from attnlab.tasks import common
from attnlab.tasks.mad import tokens

MIN_LENGTH = 3  # one key-value pair and the final query (its value is the last target)


@dataclasses.dataclass(frozen=True)
class RecallConfig:
  vocab_size: int = 16  # MAD's vocabulary, noise ids included (MAD varies it 16 -> 128)
  noise_vocab_size: int = 0  # the last ids of the vocabulary are noise tokens
  frac_noise: float = 0.0  # probability that a key-value pair is replaced by two noise tokens

  def __post_init__(self):
    common.check_at_least("noise_vocab_size", self.noise_vocab_size, 0)
    common.check_at_least("vocab_size", self.vocab_size - self.noise_vocab_size, 4,
                          f"after noise_vocab_size={self.noise_vocab_size} noise ids: two keys and "
                          "two values at least")
    tokens.check_fraction("frac_noise", self.frac_noise)
    if self.frac_noise and not self.noise_vocab_size:
      raise ValueError(f"frac_noise={self.frac_noise} needs noise_vocab_size >= 1")


@dataclasses.dataclass(frozen=True)
class NoisyRecallConfig(RecallConfig):
  vocab_size: int = 32  # 16 content ids and 16 noise ids (MAD varies it 32 -> 144)
  noise_vocab_size: int = 16
  frac_noise: float = 0.2  # MAD varies it 0.2 -> 0.8


def _interleave(a_BJ, b_BJ):
  batch, pairs = a_BJ.shape
  return jnp.stack([a_BJ, b_BJ], axis=-1).reshape(batch, 2 * pairs)


def sample_padded(config: RecallConfig, rng: jax.Array, batch_size: int, lengths_B: jax.Array,
                  padded_length: int) -> dict:
  common.check_batch(batch_size)
  common.check_length("mad recall", padded_length, MIN_LENGTH,
                      "a key-value pair and the final query")
  vocab, content = config.vocab_size, config.vocab_size - config.noise_vocab_size
  num_keys = content // 2
  pairs = (padded_length + 1) // 2  # J: pairs of the longest row; draws are time-major over them
  pairs_B = (lengths_B + 1) // 2
  shift_B = lengths_B - (2 * pairs_B - 1)  # one leading filler when L is even
  key_rng, value_rng, noise_rng, noise_token_rng, keep_rng, query_rng = jax.random.split(rng, 6)

  keys_BJ = base.time_major_randint(key_rng, batch_size, pairs, 0, num_keys)
  table_BK = jax.random.randint(value_rng, (batch_size, num_keys), num_keys, content, jnp.int32)
  j_J = jnp.arange(pairs)[None, :]
  stream_BJ = j_J < (pairs_B - 1)[:, None]
  noisy_BJ = jnp.zeros((batch_size, pairs), bool)
  if config.frac_noise:
    noisy_BJ = jax.random.bernoulli(noise_rng, config.frac_noise, (pairs, batch_size)).T
    keep_B = jnp.floor(jax.random.uniform(keep_rng, (batch_size,)) * (pairs_B - 1)).astype(jnp.int32)
    noisy_BJ = noisy_BJ & stream_BJ & (j_J != keep_B[:, None])
  real_BJ = stream_BJ & ~noisy_BJ

  hits_BJK = (keys_BJ[..., None] == jnp.arange(num_keys)[None, None, :]) & real_BJ[..., None]
  before_BJK = jnp.cumsum(hits_BJK, axis=1) - hits_BJK  # shown at a strictly earlier pair
  repeat_BJ = real_BJ & (jnp.take_along_axis(before_BJK, keys_BJ[..., None], axis=-1)[..., 0] > 0)
  shown_BK = jnp.any(hits_BJK, axis=1)
  scores_BK = jnp.where(shown_BK, jax.random.uniform(query_rng, (batch_size, num_keys)), -1.0)
  query_B = jnp.argmax(scores_BK, axis=-1).astype(jnp.int32)  # uniform over the distinct keys shown

  is_query_BJ = j_J == (pairs_B - 1)[:, None]
  keys_BJ = jnp.where(is_query_BJ, query_B[:, None], keys_BJ)
  values_BJ = jnp.take_along_axis(table_BK, keys_BJ, axis=1)
  if config.frac_noise:
    noise_BJ2 = base.time_major_randint(noise_token_rng, batch_size, 2 * pairs, content,
                                        vocab).reshape(batch_size, pairs, 2)
    keys_BJ = jnp.where(noisy_BJ, noise_BJ2[..., 0], keys_BJ)
    values_BJ = jnp.where(noisy_BJ, noise_BJ2[..., 1], values_BJ)
  seq_BS = _interleave(keys_BJ, values_BJ)
  scored_BS = _interleave(jnp.zeros_like(repeat_BJ), repeat_BJ | is_query_BJ)

  # Position t of the row holds token t - shift of the instance; its target is the next one.
  src_BL = jnp.arange(padded_length)[None, :] - shift_B[:, None]
  inside_BL = base.valid_BL(lengths_B, padded_length) & (src_BL >= 0)
  last = 2 * pairs - 1
  inputs_BL = jnp.where(inside_BL, jnp.take_along_axis(seq_BS, jnp.clip(src_BL, 0, last), axis=1),
                        tokens.pad_id(vocab))
  next_BL = jnp.clip(src_BL + 1, 0, last)
  mask_BL = inside_BL & jnp.take_along_axis(scored_BS, next_BL, axis=1)
  targets_BL = jnp.where(mask_BL, jnp.take_along_axis(seq_BS, next_BL, axis=1), 0)
  return {"inputs": inputs_BL.astype(jnp.int32), "targets": targets_BL.astype(jnp.int32),
          "mask": mask_BL.astype(jnp.float32), "lengths": lengths_B}


def make_in_context_recall(config: RecallConfig) -> base.Task:
  return tokens.make("mad_in_context_recall", config, sample_padded, config.vocab_size, MIN_LENGTH)


def make_noisy_recall(config: NoisyRecallConfig) -> base.Task:
  return tokens.make("mad_noisy_recall", config, sample_padded, config.vocab_size, MIN_LENGTH)
