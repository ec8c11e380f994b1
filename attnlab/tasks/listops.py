"""ListOps (Nangia & Bowman 2018), as the Long Range Arena generates it (Tay et al. 2021,
``lra_benchmarks/data/listops.py``): nested MIN / MAX / MED / SUM_MOD prefix expressions over digits.

  [MAX 2 9 [MIN 4 7 ] 0 ]  ->  9

Tokens: digits 0-9, then MIN = 10, MAX = 11, MED = 12, SM = 13 (sum mod 10), END = 14 (the closing
bracket), PAD = 15. The target (one class, 0-9) is the expression's value; MED is the lower median
(``int(np.median(...))``). A row of length L holds one expression right-aligned (PAD before it), so
it ends at the last position, where the model reads its answer.

The trees are LRA's: a node at depth d < ``max_depth`` (the root has depth 1) is an operation with
probability ``op_prob`` (LRA's VALUE_P, 0.25), else a digit; an operation takes 2 .. ``max_args``
arguments (uniform) and one of the four operators (uniform); digits are uniform. LRA keeps the trees
whose token count lies in (500, 2000) and pads them to 2000; here a row of length L keeps those
with ceil(``min_fraction`` * L) to L tokens, so ``min_fraction = 0.25`` at L = 2000 is LRA's range.
LRA's tokenizer keeps alphanumeric tokens only and so drops the closing brackets, as we read its
input pipeline; here they stay, so every expression is unambiguous.

Sampling inside jit (the decision): a tree's size is only known once it is drawn, so the sampler
draws whole trees by rejection, which keeps LRA's distribution exactly (conditioned on the length
range). Each round draws ``TRIES`` candidate trees per row at once, each generated in prefix order
by a ``lax.scan`` over positions with a stack of the arguments each open operation still needs; a
row takes its first candidate whose length is in range, and a ``lax.while_loop`` runs rounds until
every row has one or ``ROUNDS`` rounds have passed. All of it is traced code with static shapes:
the sampler jits, vmaps and pads like every other task, and the draws are time-major, so a padded
row equals the unpadded one. The root is always an operation (every tree in range has one), so about
a third of the candidates fit at L = 2000 and a fifth at L = 512: a batch of 32 rows usually needs
two or three rounds. A row
that finds none in ``ROUNDS`` rounds (only with knobs that make the range nearly impossible; the
config check refuses impossible ones) gets a four-token expression instead. The value is computed by
a second scan, a stack machine with a digit histogram per open operation (``evaluate``).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp

from attnlab.tasks import base
from attnlab.tasks import common

MIN, MAX, MED, SUM_MOD, END, PAD = 10, 11, 12, 13, 14, 15
VOCAB = 16
DIGITS = 10
TRIES = 8  # candidate trees per row and round
ROUNDS = 32  # rounds before the fallback expression
MIN_LENGTH = 4  # [OP d d ]
_BIG = 1 << 30


@dataclasses.dataclass(frozen=True)
class ListOpsConfig:
  max_depth: int = 10  # operations sit at depths 1 .. max_depth - 1 (LRA: 10)
  max_args: int = 10  # arguments per operation: 2 .. max_args (LRA: 10)
  min_fraction: float = 0.25  # expressions have ceil(min_fraction * L) .. L tokens (LRA: 500/2000)
  op_prob: float = 0.25  # probability that an argument is an operation (LRA's VALUE_P)

  def __post_init__(self):
    common.check_at_least("max_depth", self.max_depth, 2, "the root operation and its digits")
    common.check_at_least("max_args", self.max_args, 2)
    if not 0.0 < self.min_fraction <= 1.0:
      raise ValueError(f"min_fraction={self.min_fraction}; allowed: a fraction in (0, 1]")
    if not 0.0 <= self.op_prob <= 1.0:
      raise ValueError(f"op_prob={self.op_prob}; allowed: a probability in [0, 1]")


def max_tokens(config: ListOpsConfig) -> int:
  """The most tokens a tree can have (every node an operation of max_args arguments)."""
  size = 1  # a digit at depth max_depth
  for _ in range(config.max_depth - 1):
    size = min(2 + config.max_args * size, _BIG) if config.op_prob > 0 else 2 + config.max_args
  return size


def shortest(config: ListOpsConfig, length):
  """The fewest tokens an expression in a row of ``length`` has (traced or static)."""
  if isinstance(length, int):
    return max(MIN_LENGTH, math.ceil(config.min_fraction * length))
  return jnp.maximum(MIN_LENGTH, jnp.ceil(config.min_fraction * length).astype(jnp.int32))


def _generate_step(carry, xs, *, max_depth: int, op_prob: float):
  """One position of candidate trees in prefix order; carry (depth, args still needed per depth,
  done, length, t)."""
  depth_R, need_RD, done_R, length_R, t = carry
  u_R, op_R, arity_R, digit_R = xs
  d_D = jnp.arange(need_RD.shape[1])[None, :]
  top_R = jnp.take_along_axis(need_RD, depth_R[:, None], axis=1)[:, 0]
  root_R = (depth_R == 0) & ~done_R
  close_R = (depth_R > 0) & (top_R == 0)
  child_R = (depth_R > 0) & (top_R > 0)
  nested_R = child_R & (depth_R + 1 < max_depth) & (u_R < op_prob)
  opens_R = root_R | nested_R
  token_R = jnp.where(opens_R, MIN + op_R, jnp.where(close_R, END,
                                                     jnp.where(child_R, digit_R, PAD)))
  need_RD = need_RD - (child_R[:, None] & (d_D == depth_R[:, None]))
  new_depth_R = depth_R + opens_R - close_R
  need_RD = jnp.where(opens_R[:, None] & (d_D == new_depth_R[:, None]), arity_R[:, None], need_RD)
  finished_R = close_R & (new_depth_R == 0)
  length_R = jnp.where(finished_R, t + 1, length_R)
  return (new_depth_R, need_RD, done_R | finished_R, length_R, t + 1), token_R


def _candidates(config: ListOpsConfig, rng, batch_size: int, padded_length: int):
  """(tokens int32[TRIES, B, P] left-aligned, length int32[TRIES, B]; 0 if unfinished)."""
  rows = TRIES * batch_size
  shape = (padded_length, TRIES, batch_size)  # time-major: prefix-stable in the padded length
  u_rng, op_rng, arity_rng, digit_rng = jax.random.split(rng, 4)
  xs = (jax.random.uniform(u_rng, shape).reshape(padded_length, rows),
        jax.random.randint(op_rng, shape, 0, 4, jnp.int32).reshape(padded_length, rows),
        jax.random.randint(arity_rng, shape, 2, config.max_args + 1, jnp.int32).reshape(
            padded_length, rows),
        jax.random.randint(digit_rng, shape, 0, DIGITS, jnp.int32).reshape(padded_length, rows))
  init = (jnp.zeros(rows, jnp.int32), jnp.zeros((rows, config.max_depth + 1), jnp.int32),
          jnp.zeros(rows, bool), jnp.zeros(rows, jnp.int32), jnp.int32(0))
  step = functools.partial(_generate_step, max_depth=config.max_depth, op_prob=config.op_prob)
  (_, _, done, length, _), tokens_PR = jax.lax.scan(step, init, xs)
  tokens = tokens_PR.T.reshape(TRIES, batch_size, padded_length)
  return tokens, jnp.where(done, length, 0).reshape(TRIES, batch_size)


def _reduce(op_R, counts_RV):
  """The value of an operation over digits given as a histogram int32[R, 10]."""
  total_R = jnp.sum(counts_RV, axis=-1)
  cum_RV = jnp.cumsum(counts_RV, axis=-1)

  def kth(k_R):  # the k-th smallest digit (0-based)
    return jnp.sum(cum_RV <= k_R[:, None], axis=-1)

  median_R = (kth((total_R - 1) // 2) + kth(total_R // 2)) // 2
  sum_mod_R = jnp.sum(counts_RV * jnp.arange(DIGITS)[None, :], axis=-1) % DIGITS
  return jnp.select([op_R == 0, op_R == 1, op_R == 2],
                    [kth(jnp.zeros_like(total_R)), kth(total_R - 1), median_R], sum_mod_R)


def _evaluate_step(carry, token_R):
  depth_R, op_RD, counts_RDV, value_R = carry
  rows, depth = op_RD.shape
  at_RD = jnp.arange(depth)[None, :] == depth_R[:, None]
  is_digit_R, is_op_R, is_end_R = token_R < DIGITS, (token_R >= MIN) & (token_R < END), token_R == END
  # END: reduce the top operation, then count its value as a digit of the one below.
  top_R = _reduce(jnp.take_along_axis(op_RD, depth_R[:, None], axis=1)[:, 0],
                  jnp.take_along_axis(counts_RDV, depth_R[:, None, None], axis=1)[:, 0])
  depth_R = depth_R + is_op_R - is_end_R
  at_new_RD = jnp.arange(depth)[None, :] == depth_R[:, None]
  digit_R = jnp.where(is_end_R, top_R, token_R)
  adds_RD = (is_digit_R | is_end_R)[:, None] & jnp.where(is_end_R[:, None], at_new_RD, at_RD)
  onehot_RV = jnp.arange(DIGITS)[None, :] == jnp.clip(digit_R, 0, DIGITS - 1)[:, None]
  counts_RDV = jnp.where((is_op_R[:, None] & at_new_RD)[..., None], 0, counts_RDV)
  counts_RDV = counts_RDV + (adds_RD[..., None] & onehot_RV[:, None, :])
  op_RD = jnp.where(is_op_R[:, None] & at_new_RD, token_R[:, None] - MIN, op_RD)
  value_R = jnp.where(is_end_R & (depth_R == 0), top_R, value_R)
  return (depth_R, op_RD, counts_RDV, value_R), None


def evaluate(tokens_BL: jax.Array, max_depth: int) -> jax.Array:
  """int32[B]: the value of each row's expression (PAD ignored; ``max_depth`` bounds the nesting)."""
  rows = tokens_BL.shape[0]
  init = (jnp.zeros(rows, jnp.int32), jnp.zeros((rows, max_depth + 1), jnp.int32),
          jnp.zeros((rows, max_depth + 1, DIGITS), jnp.int32), jnp.zeros(rows, jnp.int32))
  (_, _, _, value_B), _ = jax.lax.scan(_evaluate_step, init, tokens_BL.T)
  return value_B


def sample_padded(config: ListOpsConfig, rng: jax.Array, batch_size: int, lengths_B: jax.Array,
                  padded_length: int) -> dict:
  """Row b: an expression of ceil(min_fraction * lengths[b]) .. lengths[b] tokens, right-aligned
  in its first lengths[b] positions; PAD before it and after the row."""
  common.check_batch(batch_size)
  common.check_length("listops", padded_length, MIN_LENGTH, "[OP d d ]")
  if shortest(config, padded_length) > max_tokens(config):
    raise ValueError(f"listops: length={padded_length} needs expressions of at least "
                     f"{shortest(config, padded_length)} tokens (min_fraction={config.min_fraction})"
                     f" but max_depth={config.max_depth}, max_args={config.max_args} allow at most "
                     f"{max_tokens(config)}")
  lo_B, hi_B = shortest(config, lengths_B), lengths_B
  round_rng, fallback_rng = jax.random.split(rng)

  def body(carry):
    r, chosen_BL, length_B, found_B = carry
    tokens, length = _candidates(config, jax.random.fold_in(round_rng, r), batch_size,
                                 padded_length)
    fits = (length >= lo_B[None]) & (length <= hi_B[None])
    first_B = jnp.argmax(fits, axis=0)
    take_B = ~found_B & jnp.any(fits, axis=0)
    pick_BL = jnp.take_along_axis(tokens, first_B[None, :, None], axis=0)[0]
    chosen_BL = jnp.where(take_B[:, None], pick_BL, chosen_BL)
    length_B = jnp.where(take_B, jnp.take_along_axis(length, first_B[None], axis=0)[0], length_B)
    return r + 1, chosen_BL, length_B, found_B | take_B

  def more(carry):
    return (carry[0] < ROUNDS) & ~jnp.all(carry[3])

  init = (jnp.int32(0), jnp.full((batch_size, padded_length), PAD, jnp.int32),
          jnp.zeros(batch_size, jnp.int32), jnp.zeros(batch_size, bool))
  _, chosen_BL, length_B, found_B = jax.lax.while_loop(more, body, init)
  # Fallback (knobs that make the range nearly impossible): [OP d d ].
  op_rng, digit_rng = jax.random.split(fallback_rng)
  fallback_B4 = jnp.concatenate([
      MIN + jax.random.randint(op_rng, (batch_size, 1), 0, 4, jnp.int32),
      jax.random.randint(digit_rng, (batch_size, 2), 0, DIGITS, jnp.int32),
      jnp.full((batch_size, 1), END, jnp.int32)], axis=1)
  fallback_BL = jnp.full((batch_size, padded_length), PAD, jnp.int32).at[:, :4].set(fallback_B4)
  chosen_BL = jnp.where(found_B[:, None], chosen_BL, fallback_BL)
  length_B = jnp.where(found_B, length_B, MIN_LENGTH)
  # Right-align: position t of row b holds expression token t - (lengths[b] - length[b]).
  src_BL = jnp.arange(padded_length)[None, :] - (lengths_B - length_B)[:, None]
  inside_BL = (src_BL >= 0) & base.valid_BL(lengths_B, padded_length)
  inputs_BL = jnp.where(inside_BL, jnp.take_along_axis(
      chosen_BL, jnp.clip(src_BL, 0, padded_length - 1), axis=1), PAD)
  return {"inputs": inputs_BL, "targets": evaluate(chosen_BL, config.max_depth),
          "mask": jnp.ones((batch_size,), jnp.float32), "lengths": lengths_B}


def make(config: ListOpsConfig) -> base.Task:
  padded = functools.partial(sample_padded, config)
  return base.Task(name="listops", config=config, vocab_size=VOCAB, output_size=DIGITS,
                   output_kind=base.SEQUENCE, sample_fn=base.unpadded(padded),
                   padded_sample_fn=padded, min_length=MIN_LENGTH)
