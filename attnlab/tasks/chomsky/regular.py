"""Regular-language tasks of Delétang et al. 2023: parity check, even pairs, cycle navigation.

All L input positions hold the string; the target (one class per sequence) is read at the last
position, after the whole string, so no end marker is needed.

- parity:            binary string (a=0, b=1); target 1 if the number of b's is odd.
- even_pairs:        binary string; target 1 if the number of "ab" plus "ba" substrings is even,
                     which holds exactly when the first and last symbols are equal.
- cycle_navigation:  moves (0 stay, 1 forward, 2 backward) of an agent on a cycle of
                     ``cycle_length`` positions starting at 0; target the final position.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from attnlab.tasks import base
from attnlab.tasks import common


@dataclasses.dataclass(frozen=True)
class ParityConfig:
  pass  # the string length L is the only knob


@dataclasses.dataclass(frozen=True)
class EvenPairsConfig:
  pass  # the string length L is the only knob


@dataclasses.dataclass(frozen=True)
class CycleNavigationConfig:
  cycle_length: int = 5  # positions on the cycle (5 in the paper)

  def __post_init__(self):
    common.check_at_least("cycle_length", self.cycle_length, 2)


def _bits(rng, batch_size, length, name):
  common.check_batch(batch_size)
  common.check_length(name, length, 1, "a non-empty string")
  return jax.random.randint(rng, (batch_size, length), 0, 2, dtype=jnp.int32)


def _batch(inputs_BL, targets_B):
  return {"inputs": inputs_BL, "targets": targets_B.astype(jnp.int32),
          "mask": jnp.ones(targets_B.shape, jnp.float32)}


def sample_parity(config: ParityConfig, rng: jax.Array, batch_size: int, length: int) -> dict:
  del config
  bits_BL = _bits(rng, batch_size, length, "parity")
  return _batch(bits_BL, jnp.sum(bits_BL, axis=-1) % 2)


def sample_even_pairs(config: EvenPairsConfig, rng: jax.Array, batch_size: int, length: int) -> dict:
  del config
  bits_BL = _bits(rng, batch_size, length, "even_pairs")
  # Each change of symbol is one "ab" or "ba"; their count is even iff first == last.
  return _batch(bits_BL, bits_BL[:, 0] == bits_BL[:, -1])


def sample_cycle_navigation(config: CycleNavigationConfig, rng: jax.Array, batch_size: int,
                            length: int) -> dict:
  common.check_batch(batch_size)
  common.check_length("cycle_navigation", length, 1, "a non-empty string of moves")
  moves_BL = jax.random.randint(rng, (batch_size, length), 0, 3, dtype=jnp.int32)
  steps_BL = jnp.where(moves_BL == 1, 1, jnp.where(moves_BL == 2, -1, 0))
  return _batch(moves_BL, jnp.sum(steps_BL, axis=-1) % config.cycle_length)


def make_parity(config: ParityConfig) -> base.Task:
  return base.Task(name="parity", config=config, vocab_size=2, output_size=2,
                   output_kind=base.SEQUENCE, sample_fn=functools.partial(sample_parity, config))


def make_even_pairs(config: EvenPairsConfig) -> base.Task:
  return base.Task(name="even_pairs", config=config, vocab_size=2, output_size=2,
                   output_kind=base.SEQUENCE, sample_fn=functools.partial(sample_even_pairs, config))


def make_cycle_navigation(config: CycleNavigationConfig) -> base.Task:
  return base.Task(name="cycle_navigation", config=config, vocab_size=3,
                   output_size=config.cycle_length, output_kind=base.SEQUENCE,
                   sample_fn=functools.partial(sample_cycle_navigation, config))
