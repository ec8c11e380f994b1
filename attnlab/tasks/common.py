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


def choose_mask(rng: jax.Array, batch_size: int, span: int, count: int) -> jax.Array:
  """bool[B, span] with exactly ``count`` True per row, uniform over all such subsets.

  Selection sampling (Knuth, TAOCP vol. 2, 3.4.2, Algorithm S) as a scan over positions: take
  position t with probability (still needed) / (positions left). Sorting random keys would do the
  same but XLA's CPU sort is ~10x slower at these sizes (see scripts/benchmarks/data.py).
  """
  u_SB = jax.random.uniform(rng, (span, batch_size))
  left_S = (span - jnp.arange(span)).astype(jnp.float32)
  _, take_SB = jax.lax.scan(_selection_step, jnp.full((batch_size,), count, jnp.int32), (left_S, u_SB))
  return take_SB.T


def _selection_step(needed_B, left_and_u):
  # Module level, not a closure: un-jitted calls then reuse the traced scan body.
  left, u_B = left_and_u
  take_B = u_B * left < needed_B
  return needed_B - take_B.astype(jnp.int32), take_B


def place_in_order(mask_BS: jax.Array, values_BN: jax.Array, fill: int) -> jax.Array:
  """[B, S]: the k-th True position of each row gets values[b, k]; the others ``fill``."""
  rank_BS = jnp.clip(jnp.cumsum(mask_BS, axis=-1) - 1, 0, values_BN.shape[1] - 1)
  return jnp.where(mask_BS, jnp.take_along_axis(values_BN, rank_BS, axis=1), fill)


def mask_positions(mask_BS: jax.Array, count: int) -> jax.Array:
  """int32[B, count]: the positions of the ``count`` True entries of each row, increasing."""
  seen_BS = jnp.cumsum(mask_BS, axis=-1)
  return jnp.sum(seen_BS[:, None, :] <= jnp.arange(count)[None, :, None], axis=-1).astype(jnp.int32)


def distinct_symbols(rng: jax.Array, batch_size: int, alphabet: int, count: int) -> jax.Array:
  """int32[B, count]: per row, ``count`` distinct symbols of [0, alphabet) in random order."""
  pick_rng, order_rng = jax.random.split(rng)
  symbols_BN = mask_positions(choose_mask(pick_rng, batch_size, alphabet, count), count)
  order_BN = jnp.argsort(jax.random.uniform(order_rng, (batch_size, count)), axis=-1)
  return jnp.take_along_axis(symbols_BN, order_BN, axis=1)


def answer_mask(batch_size: int, length: int, start: int) -> jax.Array:
  """float32[B, L]: 1 at positions >= start (the answer slots at the end), else 0."""
  mask_L = (jnp.arange(length) >= start).astype(jnp.float32)
  return jnp.broadcast_to(mask_L[None, :], (batch_size, length))
