"""Multi-query associative recall, MQAR (Arora et al. 2024, "Zoology", section 3).

Input of length L: ``num_kv_pairs`` key-value pairs ``k1 v1 .. kn vn`` (distinct keys), then a query
region of L - 2n positions, BLANK except for ``num_queries`` distinct keys placed at distinct even
offsets of the region (as in Zoology, so queries never touch). At each query position the target is
the value paired with that key (per-token, token ids, mask 1 there only): a causal model answers each
query as soon as it sees it. ``gap_power`` chooses where the queries go: 0 (the default) makes every
set of even offsets equally likely, so every distance is; a > 0 is Zoology's rule, which draws the
offsets 2g (g = 0, 1, ..) without replacement with weights (g + 1)^(a - 1) (their ``power_a`` = 0.01:
most queries land right after the pairs, a few far away). Weighted sampling without replacement is
the Gumbel-top-k trick (the q largest log w_g + Gumbel noise), which draws exactly like successive
weighted draws. ``noise_rate`` puts distractors on the blank positions of the query region
(noise.py).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from attnlab.tasks import base
from attnlab.tasks import common
from attnlab.tasks import noise
from attnlab.tasks.associative_recall import interleave
from attnlab.tasks.associative_recall import key_value_pairs


@dataclasses.dataclass(frozen=True)
class MQARConfig:
  num_kv_pairs: int = 8  # key-value pairs at the start
  num_queries: int = 0  # keys queried later (distinct); 0 = every key once
  num_keys: int = 64  # key alphabet (>= num_kv_pairs, keys in a sequence are distinct)
  num_values: int = 64  # value alphabet
  noise_rate: float = 0.0  # probability that a blank query-region position becomes a distractor
  gap_power: float = 0.0  # 0: uniform query offsets; a > 0: weights (g + 1)^(a - 1) (Zoology: 0.01)

  def __post_init__(self):
    common.check_at_least("num_kv_pairs", self.num_kv_pairs, 1)
    common.check_at_least("num_queries", self.num_queries, 0)
    if self.num_queries > self.num_kv_pairs:
      raise ValueError(f"num_queries={self.num_queries}; allowed: 0..num_kv_pairs={self.num_kv_pairs}")
    common.check_at_least("num_keys", self.num_keys, self.num_kv_pairs,
                          "vocabulary too small: a sequence needs num_kv_pairs distinct keys")
    common.check_at_least("num_values", self.num_values, 2, "the answer must carry information")
    common.check_noise_rate(self.noise_rate)
    if not 0.0 <= self.gap_power <= 1.0:
      raise ValueError(f"gap_power={self.gap_power}; allowed: 0 (uniform) or (0, 1] (power law, "
                       f"Zoology uses 0.01; 1 is uniform too)")


def min_length(config: MQARConfig) -> int:
  q = config.num_queries or config.num_kv_pairs
  return 2 * config.num_kv_pairs + 2 * q - 1


def gap_weights(slots: int, power: float) -> jax.Array:
  """Zoology's unnormalised weights of query offsets 2g, g = 0 .. slots - 1."""
  return jnp.arange(1, slots + 1, dtype=jnp.float32) ** (power - 1.0)


def power_law_mask(rng: jax.Array, batch_size: int, slots: int, count: int,
                   power: float) -> jax.Array:
  """bool[B, slots], ``count`` True per row, drawn without replacement by ``gap_weights``."""
  scores_BS = jnp.log(gap_weights(slots, power))[None] + jax.random.gumbel(rng, (batch_size, slots))
  _, top_BQ = jax.lax.top_k(scores_BS, count)
  return jnp.zeros((batch_size, slots), bool).at[jnp.arange(batch_size)[:, None], top_BQ].set(True)


def sample(config: MQARConfig, rng: jax.Array, batch_size: int, length: int) -> dict:
  common.check_batch(batch_size)
  n, q = config.num_kv_pairs, config.num_queries or config.num_kv_pairs
  common.check_length("mqar", length, min_length(config),
                      f"num_kv_pairs={n} pairs, then {q} queries at even offsets")
  pair_rng, slot_rng, which_rng, noise_rng = jax.random.split(rng, 4)
  keys_BN, values_BN = key_value_pairs(pair_rng, batch_size, n, config.num_keys, config.num_values)
  slots = (length - 2 * n + 1) // 2  # even offsets of the query region
  if config.gap_power:
    chosen_BS = power_law_mask(slot_rng, batch_size, slots, q, config.gap_power)
  else:
    chosen_BS = common.choose_mask(slot_rng, batch_size, slots, q)
  which_BQ = common.distinct_symbols(which_rng, batch_size, n, q)  # which pairs are queried
  query_BS = common.place_in_order(chosen_BS, jnp.take_along_axis(keys_BN, which_BQ, axis=1), 0)
  answer_BS = common.place_in_order(chosen_BS, jnp.take_along_axis(values_BN, which_BQ, axis=1), 0)
  blank_BL = jnp.full((batch_size, length), common.BLANK, jnp.int32)
  inputs_BL = blank_BL.at[:, :2 * n].set(interleave(keys_BN, values_BN))
  inputs_BL = inputs_BL.at[:, 2 * n::2].set(query_BS)
  targets_BL = blank_BL.at[:, 2 * n::2].set(answer_BS)
  mask_BL = jnp.zeros((batch_size, length), jnp.float32).at[:, 2 * n::2].set(
      chosen_BS.astype(jnp.float32))
  return {"inputs": noise.add_noise(noise_rng, inputs_BL, config.noise_rate),
          "targets": targets_BL, "mask": mask_BL}


def make(config: MQARConfig) -> base.Task:
  vocab = common.FIRST_CONTENT + config.num_keys + config.num_values
  return base.Task(name="mqar", config=config, vocab_size=vocab, output_size=vocab,
                   output_kind=base.PER_TOKEN, sample_fn=functools.partial(sample, config),
                   min_length=min_length(config),
                   min_length_fields=("num_kv_pairs", "num_queries"))
