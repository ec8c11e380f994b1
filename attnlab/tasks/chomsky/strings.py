"""String transduction tasks of Delétang et al. 2023, written as fixed-length per-token problems.

Input of length L: the string (n symbols), a MARKER, BLANK slack, then the answer slots (BLANK) at
the end, whose targets are the output string (token ids; mask 1 on the answer slots only):

  reverse_string    (deterministic context-free)  output = the string reversed       (n slots)
  duplicate_string  (context-sensitive)           output = the string twice          (2n slots)
  bucket_sort       (context-sensitive)           output = the symbols sorted        (n slots)

``string_length`` n = 0 takes the longest string that fits: (L - 1) // 2, or (L - 1) // 3 for
duplicate_string; the slack (0 to 2 positions) is what the division leaves. Token ids: BLANK 0,
MARKER 1, symbols from 2; symbols sort in id order. Padded batches hold BLANK past each row's
length.
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


def counting_sort(string_BN: jax.Array, alphabet_size: int,
                  lengths_B: jax.Array | None = None) -> jax.Array:
  """The symbols of each row in increasing order, by counting (the buckets); no comparison sort.
  With ``lengths_B`` only each row's first lengths[b] symbols are sorted (slots after: anything)."""
  symbols_A = FIRST_SYMBOL + jnp.arange(alphabet_size)
  hits_BNA = string_BN[:, :, None] == symbols_A[None, None, :]
  if lengths_B is not None:
    hits_BNA = jnp.logical_and(hits_BNA, base.valid_BL(lengths_B, string_BN.shape[1])[..., None])
  ends_BA = jnp.cumsum(jnp.sum(hits_BNA, axis=1), axis=-1)  # bucket k fills [ends[k-1], ends[k])
  slot_N = jnp.arange(string_BN.shape[1])
  bucket_BN = jnp.sum(slot_N[None, :, None] >= ends_BA[:, None, :], axis=-1)
  return (FIRST_SYMBOL + jnp.minimum(bucket_BN, alphabet_size - 1)).astype(jnp.int32)


def _reverse(s_BN, a, n_B):
  """Output slot k = s[n - 1 - k]."""
  del a
  k_N = jnp.arange(s_BN.shape[1])
  return jnp.take_along_axis(s_BN, jnp.clip(n_B[:, None] - 1 - k_N[None], 0, None), axis=1)


def _duplicate(s_BN, a, n_B):
  """Output slot k = s[k mod n] for the 2n slots."""
  del a
  k_M = jnp.arange(2 * s_BN.shape[1])
  return jnp.take_along_axis(s_BN, k_M[None] % jnp.maximum(n_B, 1)[:, None], axis=1)


# name -> (output slots per input symbol, transform (string_BN, alphabet_size, n_B) -> output_BM,
# the first factor * n[b] slots of row b being its output)
TRANSFORMS = {
    "reverse_string": (1, _reverse),
    "duplicate_string": (2, _duplicate),
    "bucket_sort": (1, lambda s_BN, a, n_B: counting_sort(s_BN, a, n_B)),
}


def min_length(name: str, config: ReverseStringConfig) -> int:
  return (TRANSFORMS[name][0] + 1) * max(config.string_length, 1) + 1


def sample_padded(name: str, config: ReverseStringConfig, rng: jax.Array, batch_size: int,
                  lengths_B: jax.Array, padded_length: int) -> dict:
  """Row b: string, MARKER, slack and answer slots in its first lengths[b] positions, BLANK after."""
  common.check_batch(batch_size)
  factor, transform = TRANSFORMS[name]
  common.check_length(name, padded_length, min_length(name, config),
                      f"string_length={config.string_length}, a marker and {factor} answer slot(s) "
                      "per symbol")
  n_B = (jnp.full_like(lengths_B, config.string_length) if config.string_length
         else (lengths_B - 1) // (factor + 1))
  width = config.string_length or (padded_length - 1) // (factor + 1)
  string_BN = base.time_major_randint(rng, batch_size, width, FIRST_SYMBOL,
                                      FIRST_SYMBOL + config.alphabet_size)
  t_L = jnp.arange(padded_length)[None, :]
  in_string_BL = t_L < n_B[:, None]
  index_BL = jnp.broadcast_to(jnp.minimum(t_L, width - 1), (batch_size, padded_length))
  string_BL = jnp.take_along_axis(string_BN, index_BL, axis=1)
  inputs_BL = jnp.where(in_string_BL, string_BL,
                        jnp.where(t_L == n_B[:, None], common.MARKER, common.BLANK))
  start_B = lengths_B - factor * n_B  # the answer slots: [start, length)
  answer_BL = jnp.logical_and(t_L >= start_B[:, None], t_L < lengths_B[:, None])
  output_BM = transform(string_BN, config.alphabet_size, n_B)
  slot_BL = jnp.clip(t_L - start_B[:, None], 0, output_BM.shape[1] - 1)
  targets_BL = jnp.where(answer_BL, jnp.take_along_axis(output_BM, slot_BL, axis=1), common.BLANK)
  return {"inputs": inputs_BL.astype(jnp.int32), "targets": targets_BL.astype(jnp.int32),
          "mask": answer_BL.astype(jnp.float32), "lengths": lengths_B}


def _make(name: str, config: ReverseStringConfig) -> base.Task:
  vocab = FIRST_SYMBOL + config.alphabet_size
  padded = functools.partial(sample_padded, name, config)
  return base.Task(name=name, config=config, vocab_size=vocab, output_size=vocab,
                   output_kind=base.PER_TOKEN, sample_fn=base.unpadded(padded),
                   padded_sample_fn=padded, min_length=min_length(name, config),
                   min_length_fields=("string_length",))


make_reverse_string = functools.partial(_make, "reverse_string")
make_duplicate_string = functools.partial(_make, "duplicate_string")
make_bucket_sort = functools.partial(_make, "bucket_sort")
