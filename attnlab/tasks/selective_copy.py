"""Selective copy (Gu & Dao 2023, "Mamba", section 3.1): copy the data tokens scattered among noise.

Input of length L: a context of L - n - 1 positions holding ``n`` data symbols at random, distinct
positions (BLANK elsewhere, the "noise" token of the paper), a MARKER, then ``n`` blank answer slots
whose targets are the data symbols in their order of appearance (per-token, mask on the slots only).
Because the positions vary, a time-invariant model cannot solve it; the content must select.
``noise_rate`` additionally puts distractor tokens (noise.py) on blank positions.
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
class SelectiveCopyConfig:
  num_tokens: int = 16  # data symbols to copy (16 in the paper)
  alphabet_size: int = 16  # number of data symbols
  noise_rate: float = 0.0  # probability that a blank input becomes a distractor

  def __post_init__(self):
    common.check_at_least("num_tokens", self.num_tokens, 1)
    common.check_at_least("alphabet_size", self.alphabet_size, 2, "the data must carry information")
    common.check_noise_rate(self.noise_rate)


def min_length(config: SelectiveCopyConfig) -> int:
  return 2 * config.num_tokens + 1


def sample(config: SelectiveCopyConfig, rng: jax.Array, batch_size: int, length: int) -> dict:
  common.check_batch(batch_size)
  common.check_length("selective_copy", length, min_length(config),
                      f"a context holding num_tokens={config.num_tokens}, a marker and the answer slots")
  n = config.num_tokens
  context = length - n - 1
  pos_rng, data_rng, noise_rng = jax.random.split(rng, 3)
  data_BN = jax.random.randint(data_rng, (batch_size, n), common.FIRST_CONTENT,
                               common.FIRST_CONTENT + config.alphabet_size, dtype=jnp.int32)
  chosen_BC = common.choose_mask(pos_rng, batch_size, context, n)
  blank_BL = jnp.full((batch_size, length), common.BLANK, jnp.int32)
  inputs_BL = blank_BL.at[:, :context].set(common.place_in_order(chosen_BC, data_BN, common.BLANK))
  inputs_BL = inputs_BL.at[:, context].set(common.MARKER)
  inputs_BL = noise.add_noise(noise_rng, inputs_BL, config.noise_rate)
  targets_BL = blank_BL.at[:, length - n:].set(data_BN)
  return {"inputs": inputs_BL, "targets": targets_BL,
          "mask": common.answer_mask(batch_size, length, length - n)}


def make(config: SelectiveCopyConfig) -> base.Task:
  vocab = common.FIRST_CONTENT + config.alphabet_size
  return base.Task(name="selective_copy", config=config, vocab_size=vocab, output_size=vocab,
                   output_kind=base.PER_TOKEN, sample_fn=functools.partial(sample, config),
                   min_length=min_length(config), min_length_fields=("num_tokens",))
