"""Induction heads (Olsson et al. 2022), as the synthetic recall task of Fu et al. 2023 ("H3").

Input of length L: random symbols, with a special TRIGGER token at one random position p in
[0, L - 3] and again at the last position. The target (one class per sequence, a token id) is the
symbol that followed the first trigger, inputs[p + 1]: the "[A][B] ... [A] -> [B]" pattern an
induction head completes. The trigger appears nowhere else, so the answer is unambiguous.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from attnlab.tasks import base
from attnlab.tasks import common

TRIGGER = 0
FIRST_SYMBOL = 1


@dataclasses.dataclass(frozen=True)
class InductionHeadsConfig:
  alphabet_size: int = 16  # random symbols (ids 1..alphabet_size); id 0 is the trigger

  def __post_init__(self):
    common.check_at_least("alphabet_size", self.alphabet_size, 2, "the answer must carry information")


def sample(config: InductionHeadsConfig, rng: jax.Array, batch_size: int, length: int) -> dict:
  common.check_batch(batch_size)
  common.check_length("induction_heads", length, 3, "trigger, its successor and the final trigger")
  sym_rng, pos_rng = jax.random.split(rng)
  inputs_BL = jax.random.randint(sym_rng, (batch_size, length), FIRST_SYMBOL,
                                 FIRST_SYMBOL + config.alphabet_size, dtype=jnp.int32)
  pos_B1 = jax.random.randint(pos_rng, (batch_size, 1), 0, length - 2)
  targets_B = jnp.take_along_axis(inputs_BL, pos_B1 + 1, axis=1)[:, 0]
  trigger_BL = (jnp.arange(length)[None, :] == pos_B1) | (jnp.arange(length)[None, :] == length - 1)
  return {"inputs": jnp.where(trigger_BL, TRIGGER, inputs_BL), "targets": targets_B,
          "mask": jnp.ones((batch_size,), jnp.float32)}


def make(config: InductionHeadsConfig) -> base.Task:
  vocab = FIRST_SYMBOL + config.alphabet_size
  return base.Task(name="induction_heads", config=config, vocab_size=vocab, output_size=vocab,
                   output_kind=base.SEQUENCE, sample_fn=functools.partial(sample, config),
                   min_length=3)
