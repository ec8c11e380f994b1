"""MAD's selective copying: copy ``num_tokens`` data tokens, scattered among blanks, in order.

Token ids: data [0, vocab_size - 2), blank vocab_size - 2, copy vocab_size - 1; ``tokens.pad_id``
past the row. A row of length L (MAD's ``seq_len``) holds the k = ``num_tokens`` data tokens with
L - 2k - 1 blanks inserted among them, the copy token, then k blank answer slots whose targets are
the data tokens in order (mask 1 there only). As MAD inserts them (``np.insert`` at indices drawn
uniformly in [0, k)), each blank lands independently before one of the k data tokens, chosen
uniformly: the gaps are multinomial, and the last data token always sits right before the copy
token.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from attnlab.tasks import base
from attnlab.tasks import common
from attnlab.tasks.mad import tokens


@dataclasses.dataclass(frozen=True)
class SelectiveCopyConfig:
  vocab_size: int = 16  # MAD's vocabulary: data ids, blank and copy (MAD varies it 16 -> 128)
  num_tokens: int = 16  # data tokens to copy (MAD varies it 16 -> 96)

  def __post_init__(self):
    common.check_at_least("vocab_size", self.vocab_size, 4, "two data ids, blank and copy")
    common.check_at_least("num_tokens", self.num_tokens, 1)


def min_length(config: SelectiveCopyConfig) -> int:
  return 2 * config.num_tokens + 1


def sample_padded(config: SelectiveCopyConfig, rng: jax.Array, batch_size: int,
                  lengths_B: jax.Array, padded_length: int) -> dict:
  common.check_batch(batch_size)
  k, vocab = config.num_tokens, config.vocab_size
  blank, copy = vocab - 2, vocab - 1
  common.check_length("mad_selective_copy", padded_length, min_length(config),
                      f"num_tokens={k} data tokens, the copy token and {k} answer slots")
  data_rng, slot_rng = jax.random.split(rng)
  data_BK = jax.random.randint(data_rng, (batch_size, k), 0, vocab - 2, jnp.int32)
  # Blank i (of L - 2k - 1) goes before data token slot_i: count the blanks before each one.
  slot_BL = base.time_major_randint(slot_rng, batch_size, padded_length, 0, k)
  blanks_B = lengths_B - 2 * k - 1
  counted_BL = jnp.arange(padded_length)[None, :] < blanks_B[:, None]
  gaps_BK = jnp.sum((slot_BL[:, :, None] == jnp.arange(k)[None, None, :]) & counted_BL[..., None], axis=1)
  pos_BK = jnp.arange(k)[None, :] + jnp.cumsum(gaps_BK, axis=1)
  rows_B1 = jnp.arange(batch_size)[:, None]
  t_L = jnp.arange(padded_length)[None, :]
  answers_B = lengths_B - k  # first answer slot
  inputs_BL = jnp.where(t_L < lengths_B[:, None], blank, tokens.pad_id(vocab))
  inputs_BL = jnp.where(t_L == (answers_B - 1)[:, None], copy, inputs_BL)
  inputs_BL = inputs_BL.at[rows_B1, pos_BK].set(data_BK)
  mask_BL = (t_L >= answers_B[:, None]) & (t_L < lengths_B[:, None])
  slot_BL = jnp.clip(t_L - answers_B[:, None], 0, k - 1)
  targets_BL = jnp.where(mask_BL, jnp.take_along_axis(data_BK, slot_BL, axis=1), 0)
  return {"inputs": inputs_BL.astype(jnp.int32), "targets": targets_BL.astype(jnp.int32),
          "mask": mask_BL.astype(jnp.float32), "lengths": lengths_B}


def make(config: SelectiveCopyConfig) -> base.Task:
  return tokens.make("mad_selective_copy", config, sample_padded, config.vocab_size,
                     min_length(config))
