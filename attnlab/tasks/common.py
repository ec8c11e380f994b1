"""Vocabulary layout and checks shared by the token tasks (copy, recall, distant dependency...).

Token ids of every task that has a noise option:

  0                      BLANK: filler, delay and answer-slot input
  1                      MARKER: delimiter / query marker ("now answer")
  2 .. 2+NUM_DISTRACTORS distractor tokens (see ``noise.py``); never content, never an answer
  FIRST_CONTENT ..       the task's content symbols (data, keys, values)

The distractor ids are reserved whether or not a config uses noise, so a model trained clean can be
evaluated on noisy inputs with the same vocabulary. Targets of token-reproducing tasks are token ids
(``output_size == vocab_size``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

BLANK = 0
MARKER = 1
FIRST_DISTRACTOR = 2
NUM_DISTRACTORS = 8
FIRST_CONTENT = FIRST_DISTRACTOR + NUM_DISTRACTORS


def check_at_least(field: str, value, minimum, why: str = "") -> None:
  """ValueError naming ``field`` unless value >= minimum (config checks, before any compile)."""
  if value < minimum:
    raise ValueError(f"{field}={value}; must be >= {minimum}{' (' + why + ')' if why else ''}")


def check_noise_rate(noise_rate: float) -> None:
  if not 0.0 <= noise_rate <= 1.0:
    raise ValueError(f"noise_rate={noise_rate}; allowed: a probability in [0, 1]")


def check_length(task: str, length: int, minimum: int, why: str) -> None:
  """ValueError naming the minimum input length L for this config; called on static shapes."""
  if length < minimum:
    raise ValueError(f"{task}: length={length} too short; this config needs length >= {minimum} ({why})")


def check_batch(batch_size: int) -> None:
  if batch_size < 1:
    raise ValueError(f"batch_size={batch_size}; must be >= 1")


def sorted_distinct_positions(rng: jax.Array, batch_size: int, span: int, count: int) -> jax.Array:
  """int32[B, count]: per row, ``count`` distinct positions in [0, span), increasing."""
  keys_BS = jax.random.uniform(rng, (batch_size, span))
  return jnp.sort(jnp.argsort(keys_BS, axis=-1)[:, :count], axis=-1).astype(jnp.int32)


def distinct_symbols(rng: jax.Array, batch_size: int, alphabet: int, count: int) -> jax.Array:
  """int32[B, count]: per row, ``count`` distinct symbols of [0, alphabet) in random order."""
  keys_BA = jax.random.uniform(rng, (batch_size, alphabet))
  return jnp.argsort(keys_BA, axis=-1)[:, :count].astype(jnp.int32)


def scatter_rows(base_BL: jax.Array, pos_BN: jax.Array, values_BN: jax.Array) -> jax.Array:
  """base with base[b, pos[b, i]] = values[b, i] (positions distinct within a row)."""
  rows_BN = jnp.arange(base_BL.shape[0])[:, None] + jnp.zeros_like(pos_BN)
  return base_BL.at[rows_BN, pos_BN].set(values_BN.astype(base_BL.dtype))


def answer_mask(batch_size: int, length: int, start: int) -> jax.Array:
  """float32[B, L]: 1 at positions >= start (the answer slots at the end), else 0."""
  mask_L = (jnp.arange(length) >= start).astype(jnp.float32)
  return jnp.broadcast_to(mask_L[None, :], (batch_size, length))
