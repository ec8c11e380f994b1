"""String transduction tasks of Delétang et al. 2023, written as fixed-length per-token problems.

Input of length L: the string (n symbols), a MARKER, BLANK slack, then the answer slots (BLANK) at
the end, whose targets are the output string (token ids; mask 1 on the answer slots only):

  reverse_string    (deterministic context-free)  output = the string reversed       (n slots)
  duplicate_string  (context-sensitive)           output = the string twice          (2n slots)
  bucket_sort       (context-sensitive)           output = the symbols sorted        (n slots)

``string_length`` n = 0 takes the longest string that fits: (L - 1) // 2, or (L - 1) // 3 for
duplicate_string; the slack (0 to 2 positions) is what the division leaves. Token ids: BLANK 0,
MARKER 1, symbols from 2; symbols sort in id order.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from attnlab.tasks import base
from attnlab.tasks import common

FIRST_SYMBOL = 2


@dataclasses.dataclass(frozen=True)
class ReverseStringConfig:
  alphabet_size: int = 2  # symbols in the string (binary in the paper)
  string_length: int = 0  # n; 0 = as long as fits in L

  def __post_init__(self):
    common.check_at_least("alphabet_size", self.alphabet_size, 2)
    common.check_at_least("string_length", self.string_length, 0)


@dataclasses.dataclass(frozen=True)
class DuplicateStringConfig(ReverseStringConfig):
  pass


@dataclasses.dataclass(frozen=True)
class BucketSortConfig(ReverseStringConfig):
  alphabet_size: int = 5  # symbols to sort (5 in the paper)


def counting_sort(string_BN: jax.Array, alphabet_size: int) -> jax.Array:
  """The symbols of each row in increasing order, by counting (the buckets); no comparison sort."""
  symbols_A = FIRST_SYMBOL + jnp.arange(alphabet_size)
  counts_BA = jnp.sum(string_BN[:, :, None] == symbols_A[None, None, :], axis=1)
  ends_BA = jnp.cumsum(counts_BA, axis=-1)  # bucket k fills [ends[k-1], ends[k])
  slot_N = jnp.arange(string_BN.shape[1])
  bucket_BN = jnp.sum(slot_N[None, :, None] >= ends_BA[:, None, :], axis=-1)
  return (FIRST_SYMBOL + bucket_BN).astype(jnp.int32)


# name -> (output slots per input symbol, transform (string_BN, alphabet_size) -> output_BM)
TRANSFORMS = {
    "reverse_string": (1, lambda s_BN, a: jnp.flip(s_BN, axis=1)),
    "duplicate_string": (2, lambda s_BN, a: jnp.concatenate([s_BN, s_BN], axis=1)),
    "bucket_sort": (1, counting_sort),
}


def min_length(name: str, config: ReverseStringConfig) -> int:
  return (TRANSFORMS[name][0] + 1) * max(config.string_length, 1) + 1


def sample(name: str, config: ReverseStringConfig, rng: jax.Array, batch_size: int,
           length: int) -> dict:
  common.check_batch(batch_size)
  factor, transform = TRANSFORMS[name]
  common.check_length(name, length, min_length(name, config),
                      f"string_length={config.string_length}, a marker and {factor} answer slot(s) "
                      "per symbol")
  n = config.string_length or (length - 1) // (factor + 1)
  out = factor * n
  string_BN = jax.random.randint(rng, (batch_size, n), FIRST_SYMBOL,
                                 FIRST_SYMBOL + config.alphabet_size, dtype=jnp.int32)
  blank_BL = jnp.full((batch_size, length), common.BLANK, jnp.int32)
  return {"inputs": blank_BL.at[:, :n].set(string_BN).at[:, n].set(common.MARKER),
          "targets": blank_BL.at[:, length - out:].set(transform(string_BN, config.alphabet_size)),
          "mask": common.answer_mask(batch_size, length, length - out)}


def _make(name: str, config: ReverseStringConfig) -> base.Task:
  vocab = FIRST_SYMBOL + config.alphabet_size
  return base.Task(name=name, config=config, vocab_size=vocab, output_size=vocab,
                   output_kind=base.PER_TOKEN, sample_fn=functools.partial(sample, name, config),
                   min_length=min_length(name, config))


make_reverse_string = functools.partial(_make, "reverse_string")
make_duplicate_string = functools.partial(_make, "duplicate_string")
make_bucket_sort = functools.partial(_make, "bucket_sort")
