"""MAD's compression, with answer slots in place of MAD's auto-encoder read-out.

Token ids: content [0, vocab_size - 1), compression token vocab_size - 1; ``tokens.pad_id`` for the
answer slots and past the row. MAD's instance of ``seq_len = m`` is m - 1 uniform content tokens
then the compression token, and MAD's model must rebuild all m tokens from the encoder's output at
that last token through a small MLP (``mad/model/auto_encoder.py``). attnlab's models map a sequence
to per-token outputs, so a row of length L holds the instance of m = L // 2 tokens followed by m
answer slots whose targets are the instance's tokens in order (mask 1 there; an odd L ends with
one filler). For a recurrent model the state at the compression token is still the only way
forward, as in MAD; attention can read the instance from the answer slots instead, so its score
here is an upper bound on MAD's.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from attnlab.tasks import base
from attnlab.tasks import common
from attnlab.tasks.mad import tokens

MIN_LENGTH = 4  # one content token, the compression token, and their two answer slots


@dataclasses.dataclass(frozen=True)
class CompressionConfig:
  vocab_size: int = 16  # MAD's vocabulary, the compression token included (MAD: 16 -> 128)

  def __post_init__(self):
    common.check_at_least("vocab_size", self.vocab_size, 3, "two content ids and the compression "
                          "token")


def sample_padded(config: CompressionConfig, rng: jax.Array, batch_size: int,
                  lengths_B: jax.Array, padded_length: int) -> dict:
  common.check_batch(batch_size)
  common.check_length("mad_compression", padded_length, MIN_LENGTH,
                      "an instance of two tokens and its answer slots")
  vocab = config.vocab_size
  content_BL = base.time_major_randint(rng, batch_size, padded_length, 0, vocab - 1)
  m_B1 = (lengths_B // 2)[:, None]  # instance tokens
  t_L = jnp.arange(padded_length)[None, :]
  instance_BL = jnp.where(t_L == m_B1 - 1, vocab - 1, content_BL)
  inputs_BL = jnp.where(t_L < m_B1, instance_BL, tokens.pad_id(vocab))
  mask_BL = (t_L >= m_B1) & (t_L < 2 * m_B1)
  source_BL = jnp.clip(t_L - m_B1, 0, padded_length - 1)
  targets_BL = jnp.where(mask_BL, jnp.take_along_axis(instance_BL, source_BL, axis=1), 0)
  return {"inputs": inputs_BL.astype(jnp.int32), "targets": targets_BL.astype(jnp.int32),
          "mask": mask_BL.astype(jnp.float32), "lengths": lengths_B}


def make(config: CompressionConfig) -> base.Task:
  return tokens.make("mad_compression", config, sample_padded, config.vocab_size, MIN_LENGTH)
