"""Flip-flop language modelling (Liu, Ash, Goel, Krishnamurthy & Zhang 2023, "Exposing Attention
Glitches with Flip-Flop Language Modeling").

A string of instruction-bit pairs over a one-bit memory: ``w b`` writes bit b, ``i b`` is ignored,
``r b`` reads, and its b must equal the last written bit. The first instruction is always a write,
the last always a read; the others are w, i or r with probabilities ``p_write``, ``p_ignore`` and
``p_read``; the bits of writes and ignores are uniform. Tokens: bits 0 and 1, then W = 2, I = 3,
R = 4. A row of length L holds L // 2 pairs (an odd L ends with one ignored filler, I). The target
sits at each read instruction: the bit that follows it, which is the last written bit (per-token,
mask 1 there only). Liu et al. train a language model on every token and score the read bits, the
only deterministic ones; here the loss is on the read bits alone.

Liu et al.'s FFL(p) has p_ignore = p and p_write = p_read = (1 - p) / 2; they train on FFL(0.8) at
length 512 and test in distribution and on sparse (FFL(0.98): long gaps) and dense (FFL(0.1))
strings (``VARIANTS``). Their measure is the fraction of strings with any wrong read, which is
1 - ``sequence_accuracy``.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from attnlab.tasks import base
from attnlab.tasks import common

WRITE, IGNORE, READ = 2, 3, 4
# p_ignore of Liu et al.'s test sets: in distribution, sparse, dense.
VARIANTS = {"in_distribution": 0.8, "sparse": 0.98, "dense": 0.1}


@dataclasses.dataclass(frozen=True)
class FlipFlopConfig:
  p_write: float = 0.1  # probability of a write instruction (after the first)
  p_ignore: float = 0.8  # probability of an ignore instruction
  p_read: float = 0.1  # probability of a read instruction (before the last)

  def __post_init__(self):
    for field in ("p_write", "p_ignore", "p_read"):
      if not 0.0 <= getattr(self, field) <= 1.0:
        raise ValueError(f"{field}={getattr(self, field)}; allowed: a probability in [0, 1]")
    total = self.p_write + self.p_ignore + self.p_read
    if abs(total - 1.0) > 1e-6:
      raise ValueError(f"p_write + p_ignore + p_read = {total:g}; they must sum to 1")


def variant(p_ignore: float) -> FlipFlopConfig:
  """Liu et al.'s FFL(p_ignore): writes and reads equally likely."""
  other = round((1 - p_ignore) / 2, 10)  # 0.01, not 0.010000000000000009
  return FlipFlopConfig(p_write=other, p_ignore=p_ignore, p_read=other)


MIN_LENGTH = 4  # a write and a read


def sample_padded(config: FlipFlopConfig, rng: jax.Array, batch_size: int, lengths_B: jax.Array,
                  padded_length: int) -> dict:
  common.check_batch(batch_size)
  common.check_length("flip_flop", padded_length, MIN_LENGTH, "a write and a read")
  pairs = (padded_length + 1) // 2
  op_rng, bit_rng = jax.random.split(rng)
  u_BJ = jax.random.uniform(op_rng, (pairs, batch_size)).T
  ops_BJ = jnp.where(u_BJ < config.p_write, WRITE,
                     jnp.where(u_BJ < config.p_write + config.p_ignore, IGNORE, READ))
  j_J = jnp.arange(pairs)[None, :]
  last_B1 = (lengths_B // 2 - 1)[:, None]  # the final pair of each row
  ops_BJ = jnp.where(j_J == 0, WRITE, jnp.where(j_J == last_B1, READ, ops_BJ))
  ops_BJ = jnp.where(j_J > last_B1, IGNORE, ops_BJ)
  bits_BJ = base.time_major_randint(bit_rng, batch_size, pairs, 0, 2)
  # The memory after each pair: the bit of the last write so far (pair 0 is a write).
  written_BJ = jnp.where(ops_BJ == WRITE, j_J, 0)
  memory_BJ = jnp.take_along_axis(bits_BJ, jax.lax.cummax(written_BJ, axis=1), axis=1)
  bits_BJ = jnp.where(ops_BJ == READ, memory_BJ, bits_BJ)
  reads_BJ = ops_BJ == READ
  inputs_BS = jnp.stack([ops_BJ, bits_BJ], -1).reshape(batch_size, -1)[:, :padded_length]
  mask_BS = jnp.stack([reads_BJ, jnp.zeros_like(reads_BJ)], -1).reshape(batch_size, -1)
  mask_BL = mask_BS[:, :padded_length] & base.valid_BL(lengths_B, padded_length)
  targets_BL = jnp.where(mask_BL, jnp.stack([bits_BJ, bits_BJ], -1).reshape(
      batch_size, -1)[:, :padded_length], 0)
  inputs_BL = jnp.where(base.valid_BL(lengths_B, padded_length), inputs_BS, IGNORE)
  return {"inputs": inputs_BL.astype(jnp.int32), "targets": targets_BL.astype(jnp.int32),
          "mask": mask_BL.astype(jnp.float32), "lengths": lengths_B}


def make(config: FlipFlopConfig) -> base.Task:
  padded = functools.partial(sample_padded, config)
  return base.Task(name="flip_flop", config=config, vocab_size=5, output_size=2,
                   output_kind=base.PER_TOKEN, sample_fn=base.unpadded(padded),
                   padded_sample_fn=padded, min_length=MIN_LENGTH)
