"""Regular-language tasks of Delétang et al. 2023: parity check, even pairs, cycle navigation.

All L input positions hold the string; the target (one class per sequence) is read at the last
position, after the whole string, so no end marker is needed. Padded batches (``base.py``) hold
symbol 0 past each row's length, which changes no target.

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


def _check(name, batch_size, padded_length):
  common.check_batch(batch_size)
  common.check_length(name, padded_length, 1, "a non-empty string")


def _batch(inputs_BL, targets_B, lengths_B):
  return {"inputs": inputs_BL, "targets": targets_B.astype(jnp.int32),
          "mask": jnp.ones(targets_B.shape, jnp.float32), "lengths": lengths_B}


def _symbols(rng, batch_size, lengths_B, padded_length, alphabet):
  """int32[B, P]: symbols of [0, alphabet) before each row's length, 0 after it."""
  symbols_BL = base.time_major_randint(rng, batch_size, padded_length, 0, alphabet)
  return jnp.where(base.valid_BL(lengths_B, padded_length), symbols_BL, 0)


def sample_parity(config: ParityConfig, rng: jax.Array, batch_size: int, lengths_B: jax.Array,
                  padded_length: int) -> dict:
  del config
  _check("parity", batch_size, padded_length)
  bits_BL = _symbols(rng, batch_size, lengths_B, padded_length, 2)  # padding adds no 1s
  return _batch(bits_BL, jnp.sum(bits_BL, axis=-1) % 2, lengths_B)


def sample_even_pairs(config: EvenPairsConfig, rng: jax.Array, batch_size: int,
                      lengths_B: jax.Array, padded_length: int) -> dict:
  del config
  _check("even_pairs", batch_size, padded_length)
  bits_BL = _symbols(rng, batch_size, lengths_B, padded_length, 2)
  last_B = jnp.take_along_axis(bits_BL, jnp.maximum(lengths_B - 1, 0)[:, None], axis=1)[:, 0]
  # Each change of symbol is one "ab" or "ba"; their count is even iff first == last.
  return _batch(bits_BL, bits_BL[:, 0] == last_B, lengths_B)


def sample_cycle_navigation(config: CycleNavigationConfig, rng: jax.Array, batch_size: int,
                            lengths_B: jax.Array, padded_length: int) -> dict:
  _check("cycle_navigation", batch_size, padded_length)
  moves_BL = _symbols(rng, batch_size, lengths_B, padded_length, 3)  # padding: 0, "stay"
  steps_BL = jnp.where(moves_BL == 1, 1, jnp.where(moves_BL == 2, -1, 0))
  return _batch(moves_BL, jnp.sum(steps_BL, axis=-1) % config.cycle_length, lengths_B)


def _make(name, config, padded_sample, vocab_size, output_size) -> base.Task:
  padded = functools.partial(padded_sample, config)
  return base.Task(name=name, config=config, vocab_size=vocab_size, output_size=output_size,
                   output_kind=base.SEQUENCE, sample_fn=base.unpadded(padded),
                   padded_sample_fn=padded)


def make_parity(config: ParityConfig) -> base.Task:
  return _make("parity", config, sample_parity, 2, 2)


def make_even_pairs(config: EvenPairsConfig) -> base.Task:
  return _make("even_pairs", config, sample_even_pairs, 2, 2)


def make_cycle_navigation(config: CycleNavigationConfig) -> base.Task:
  return _make("cycle_navigation", config, sample_cycle_navigation, 3, config.cycle_length)
