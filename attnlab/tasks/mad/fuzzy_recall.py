"""MAD's fuzzy in-context recall: keys and values span 1 .. ``k_motif_size`` / ``v_motif_size``
adjacent tokens (multi-query, as MAD's benchmark runs it).

Token ids, with C = vocab_size - 1: key tokens [0, C // 2), value tokens [C // 2, C), MAD's pad
C; ``tokens.pad_id`` past the row. A key of size m is m distinct key tokens in random order (a value
likewise), sizes drawn uniformly per pair. A row of length L holds MAD's instance of
``seq_len = L`` as next-token inputs: L + 1 tokens, left-padded with MAD's pad, of which the row
shows the first L. The instance, as MAD builds it:

  a probe pair (key and value of random sizes) is drawn first, and a point uniform in
  [0, L - 2 * probe size); pairs are appended while the tokens so far number fewer than
  L - probe size - (k_motif_size + v_motif_size): the probe pair itself, once the tokens so far
  reach that point (unless a random key already equalled the probe key), else a random key with the
  row's value for it (drawn on the key's first appearance, with its own size; the probe's value for
  the probe key); then the probe pair again, as the final query.

Targets (mask 1) are the value tokens of keys shown before in the row, final query included. Two
departures from MAD: MAD's test set prompts with keys of the largest size only (its training set
mixes sizes), here both mix them; and MAD also scores a final query whose key its stream never
showed (when the probe point falls past the stream's end), here a value is scored only when its
key was shown before.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from attnlab.tasks import base
from attnlab.tasks import common
from attnlab.tasks.mad import tokens


@dataclasses.dataclass(frozen=True)
class FuzzyRecallConfig:
  vocab_size: int = 16  # MAD's vocabulary, its pad included (MAD varies it 16 -> 128)
  k_motif_size: int = 3  # keys span 1 .. k_motif_size tokens
  v_motif_size: int = 3  # values span 1 .. v_motif_size tokens

  def __post_init__(self):
    common.check_at_least("k_motif_size", self.k_motif_size, 1)
    common.check_at_least("v_motif_size", self.v_motif_size, 1)
    num_keys = (self.vocab_size - 1) // 2
    num_values = self.vocab_size - 1 - num_keys
    if num_keys < self.k_motif_size or num_values < self.v_motif_size:
      raise ValueError(f"vocab_size={self.vocab_size} is too small: keys of k_motif_size="
                       f"{self.k_motif_size} and values of v_motif_size={self.v_motif_size} "
                       f"distinct tokens need {num_keys} key and {num_values} value ids to be "
                       "at least that many")
    if (self.k_motif_size + 1) * num_keys ** self.k_motif_size >= 2 ** 31:
      raise ValueError(f"k_motif_size={self.k_motif_size} with vocab_size={self.vocab_size}: key "
                       "codes overflow int32; use fewer key tokens")


def min_length(config: FuzzyRecallConfig) -> int:
  return 2 * (config.k_motif_size + config.v_motif_size) + 1


def _motifs(rng, shape, alphabet: int, size: int, first: int):
  """int32[*shape, size]: ``size`` distinct ids of [first, first + alphabet), every ordered choice
  equally likely. Drawn one after another without replacement: the i-th is uniform among the
  alphabet - i ids left (the r-th smallest of them), found by stepping r past the ids already taken
  in increasing order. No sort: XLA's CPU sort of many short rows is slow."""
  u = jax.random.uniform(rng, (*shape, size))
  taken = []  # the ids drawn so far, kept in increasing order
  out = []
  for i in range(size):
    r = jnp.minimum(jnp.floor(u[..., i] * (alphabet - i)).astype(jnp.int32), alphabet - i - 1)
    for t in taken:
      r = r + (r >= t)
    out.append(r)
    larger = r
    for j, t in enumerate(taken):  # insert r into the sorted list
      taken[j], larger = jnp.minimum(t, larger), jnp.maximum(t, larger)
    taken.append(larger)
  return first + jnp.stack(out, axis=-1)


def _codes(motif_BJM, size_BJ, alphabet: int):
  """One int per key: its size and its tokens in base ``alphabet`` (equal iff the keys are)."""
  m_M = jnp.arange(motif_BJM.shape[-1])[None, None, :]
  digits = jnp.where(m_M < size_BJ[..., None], motif_BJM * alphabet ** m_M, 0)
  return size_BJ * alphabet ** motif_BJM.shape[-1] + jnp.sum(digits, axis=-1)


def _first_same(code_BJ):
  """int32[B, J]: the first pair with the same key as each pair. A stable sort groups equal
  keys with the earliest first (O(J log J), where comparing all pairs is O(J^2))."""
  order_BJ = jnp.argsort(code_BJ, axis=1, stable=True)
  sorted_BJ = jnp.take_along_axis(code_BJ, order_BJ, axis=1)
  k_J = jnp.arange(code_BJ.shape[1])[None, :]
  new_BJ = jnp.concatenate([jnp.ones_like(sorted_BJ[:, :1], bool),
                            sorted_BJ[:, 1:] != sorted_BJ[:, :-1]], axis=1)
  head_BJ = jax.lax.cummax(jnp.where(new_BJ, k_J, 0), axis=1)  # each group's first sorted slot
  first_sorted_BJ = jnp.take_along_axis(order_BJ, head_BJ, axis=1)
  rows_B1 = jnp.arange(code_BJ.shape[0])[:, None]
  return jnp.zeros_like(order_BJ).at[rows_B1, order_BJ].set(first_sorted_BJ)


def _value_sizes(code_BJ, vsize_BJ, probe_code_B, probe_vsize_B):
  """Each pair's value size: the first same key's, or the probe value's for the probe key."""
  first_BJ = _first_same(code_BJ)
  is_probe_BJ = code_BJ == probe_code_B[:, None]
  size_BJ = jnp.where(is_probe_BJ, probe_vsize_B[:, None],
                      jnp.take_along_axis(vsize_BJ, first_BJ, axis=1))
  return size_BJ, first_BJ, is_probe_BJ


def _starts(size_BJ):
  return jnp.cumsum(size_BJ, axis=1) - size_BJ


def sample_padded(config: FuzzyRecallConfig, rng: jax.Array, batch_size: int, lengths_B: jax.Array,
                  padded_length: int) -> dict:
  common.check_batch(batch_size)
  km, vm = config.k_motif_size, config.v_motif_size
  common.check_length("mad_fuzzy_recall", padded_length, min_length(config),
                      f"room for two pairs of up to k_motif_size + v_motif_size = {km + vm} tokens")
  content = config.vocab_size - 1
  num_keys, num_values = content // 2, content - content // 2
  pairs = padded_length // 2 + 1  # J: every pair has >= 2 tokens and starts before the longest row
  rngs = jax.random.split(rng, 9)
  b_B = jnp.arange(batch_size)
  # Stream draws, time-major over pairs (prefix-stable in the padded length).
  ksize_BJ = base.time_major_randint(rngs[0], batch_size, pairs, 1, km + 1)
  vsize_BJ = base.time_major_randint(rngs[1], batch_size, pairs, 1, vm + 1)
  key_BJM = jnp.swapaxes(_motifs(rngs[2], (pairs, batch_size), num_keys, km, 0), 0, 1)
  val_BJM = jnp.swapaxes(_motifs(rngs[3], (pairs, batch_size), num_values, vm, num_keys), 0, 1)
  # The probe pair.
  pk_B = jax.random.randint(rngs[4], (batch_size,), 1, km + 1)
  pv_B = jax.random.randint(rngs[5], (batch_size,), 1, vm + 1)
  pkey_BM = _motifs(rngs[6], (batch_size,), num_keys, km, 0)
  pval_BM = _motifs(rngs[7], (batch_size,), num_values, vm, num_keys)
  probe_size_B = pk_B + pv_B
  point_B = jnp.floor(jax.random.uniform(rngs[8], (batch_size,))
                      * (lengths_B - 2 * probe_size_B)).astype(jnp.int32)
  limit_B = lengths_B - probe_size_B - (km + vm)  # pairs start while the tokens so far are fewer
  pcode_B = _codes(pkey_BM[:, None], pk_B[:, None], num_keys)[:, 0]

  # Pass 1: where the probe goes in (the pairs before it do not depend on it).
  code_BJ = _codes(key_BJM, ksize_BJ, num_keys)
  vs_BJ, *_ = _value_sizes(code_BJ, vsize_BJ, pcode_B, pv_B)
  start_BJ = _starts(ksize_BJ + vs_BJ)
  j_J = jnp.arange(pairs)
  reached_BJ = start_BJ >= point_B[:, None]
  at_B = jnp.argmax(reached_BJ, axis=1)  # the first pair that starts at or after the point
  before_BJ = j_J[None] < at_B[:, None]
  already_B = jnp.any(before_BJ & (code_BJ == pcode_B[:, None]), axis=1)
  insert_B = (jnp.any(reached_BJ, axis=1) & ~already_B
              & (start_BJ[b_B, at_B] < limit_B))
  here_BJ = insert_B[:, None] & (j_J[None] == at_B[:, None])

  # Pass 2: the stream with the probe pair in it.
  ksize_BJ = jnp.where(here_BJ, pk_B[:, None], ksize_BJ)
  key_BJM = jnp.where(here_BJ[..., None], pkey_BM[:, None], key_BJM)
  code_BJ = jnp.where(here_BJ, pcode_B[:, None], code_BJ)
  vs_BJ, first_BJ, is_probe_BJ = _value_sizes(code_BJ, vsize_BJ, pcode_B, pv_B)
  val_BJM = jnp.where(is_probe_BJ[..., None], pval_BM[:, None],
                      jnp.take_along_axis(val_BJM, first_BJ[..., None], axis=1))
  start_BJ = _starts(ksize_BJ + vs_BJ)
  kept_BJ = start_BJ < limit_B[:, None]  # a prefix of the pairs, so a kept pair's first same
  repeat_BJ = kept_BJ & (first_BJ < j_J[None])  # key is kept too: shown before iff it is earlier
  end_B = jnp.sum(jnp.where(kept_BJ, ksize_BJ + vs_BJ, 0), axis=1)
  probe_shown_B = jnp.any(kept_BJ & (code_BJ == pcode_B[:, None]), axis=1)

  # The final query after the stream: one more pair.
  ksize_BJ = jnp.concatenate([ksize_BJ, pk_B[:, None]], axis=1)
  vs_BJ = jnp.concatenate([vs_BJ, pv_B[:, None]], axis=1)
  start_BJ = jnp.concatenate([start_BJ, end_B[:, None]], axis=1)
  key_BJM = jnp.concatenate([key_BJM, pkey_BM[:, None]], axis=1)
  val_BJM = jnp.concatenate([val_BJM, pval_BM[:, None]], axis=1)
  kept_BJ = jnp.concatenate([kept_BJ, jnp.ones((batch_size, 1), bool)], axis=1)
  scored_BJ = jnp.concatenate([repeat_BJ, probe_shown_B[:, None]], axis=1)

  # Token positions in the row: MAD left-pads the instance to L + 1 tokens.
  shift_B = lengths_B + 1 - (end_B + probe_size_B)
  k_M, v_M = jnp.arange(km)[None, None, :], jnp.arange(vm)[None, None, :]
  pos_BJN = jnp.concatenate([start_BJ[..., None] + k_M,
                             (start_BJ + ksize_BJ)[..., None] + v_M], axis=-1) + shift_B[:, None, None]
  used_BJN = kept_BJ[..., None] & jnp.concatenate(
      [k_M < ksize_BJ[..., None], v_M < vs_BJ[..., None]], axis=-1)
  tok_BJN = jnp.concatenate([key_BJM, val_BJM], axis=-1)
  scored_BJN = used_BJN & jnp.concatenate(
      [jnp.zeros((batch_size, pairs + 1, km), bool),
       jnp.broadcast_to(scored_BJ[..., None], (batch_size, pairs + 1, vm))], axis=-1)
  flat = lambda x: x.reshape(batch_size, -1)  # noqa: E731
  pos_BN, tok_BN = flat(pos_BJN), flat(tok_BJN)
  n_B1 = lengths_B[:, None]
  rows_B1 = b_B[:, None]
  t_L = jnp.arange(padded_length)[None, :]
  inputs_BL = jnp.where(t_L < jnp.minimum(shift_B, lengths_B)[:, None], content,
                        tokens.pad_id(config.vocab_size))
  inputs_BL = inputs_BL.at[rows_B1, jnp.where(flat(used_BJN) & (pos_BN < n_B1), pos_BN,
                                              padded_length)].set(tok_BN, mode="drop")
  # A token at position p is the target of position p - 1.
  at_BN = jnp.where(flat(scored_BJN) & (pos_BN - 1 < n_B1), pos_BN - 1, padded_length)
  targets_BL = jnp.zeros((batch_size, padded_length), jnp.int32).at[rows_B1, at_BN].set(
      tok_BN, mode="drop")
  mask_BL = jnp.zeros((batch_size, padded_length), jnp.float32).at[rows_B1, at_BN].set(
      1.0, mode="drop")
  return {"inputs": inputs_BL.astype(jnp.int32), "targets": targets_BL.astype(jnp.int32),
          "mask": mask_BL, "lengths": lengths_B}


def make(config: FuzzyRecallConfig) -> base.Task:
  return tokens.make("mad_fuzzy_recall", config, sample_padded, config.vocab_size,
                     min_length(config))
