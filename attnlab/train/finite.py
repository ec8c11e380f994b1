"""A finite training set (the run's ``train_examples``, MAD's training-set size): N examples of
the task drawn once and repeated in epochs; ``data.TrainData.batch`` makes a run's batches from it.

The set is defined by its two keys (``data.set_key``, ``data.order_key``), never stored: example i
is sampled from ``fold_in(set_key, i)`` inside the compiled step, and batch ``step`` takes the next
B examples of an endless sequence of shuffled epochs. So a batch is a pure function of (data_seed,
step): a resumed run trains on exactly the batches of the uninterrupted run. Training lengths must
be fixed (``check``): an example is the same sequence every time it is seen.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def epoch_order(order_key: jax.Array, epoch, num_examples: int) -> jax.Array:
  """int32[N]: the order in which epoch ``epoch`` visits the examples: sorted by random 32-bit
  keys, once (``jax.random.permutation`` repeats the sort against key ties, twice at N = 12,800,
  and compiles slower); tied keys, about N^2 / 2^33 pairs an epoch, keep their index order."""
  bits = jax.random.bits(jax.random.fold_in(order_key, epoch), (num_examples,))
  return jnp.argsort(bits).astype(jnp.int32)


def batch_indices(order_key: jax.Array, step, batch_size: int, num_examples: int) -> jax.Array:
  """int32[B]: the examples of batch ``step`` (traced or not)."""
  position_B = step * batch_size + jnp.arange(batch_size)
  epoch_B, offset_B = position_B // num_examples, position_B % num_examples
  # A batch spans at most this many consecutive epochs (static): draw their orders only.
  spans = -(-batch_size // num_examples) + 1
  first = (step * batch_size) // num_examples
  orders_EN = jax.vmap(lambda e: epoch_order(order_key, e, num_examples))(first + jnp.arange(spans))
  return orders_EN[epoch_B - first, offset_B].astype(jnp.int32)


def examples(sample_one, set_key: jax.Array, indices_B: jax.Array) -> dict:
  """The examples ``indices_B``; ``sample_one(rng)``: a batch of one, padded as the run's are."""
  def one(index):
    return jax.tree_util.tree_map(lambda x: x[0], sample_one(jax.random.fold_in(set_key, index)))

  return jax.vmap(one)(indices_B)


def check(train_examples: int, train_min_length: int, train_max_length: int) -> None:
  """ValueError naming the field for a bad ``train_examples`` (0 = fresh examples every step)."""
  if int(train_examples) < 0:
    raise ValueError(f"train_examples={train_examples}; must be >= 0 (0: a fresh batch every step)")
  if int(train_examples) and int(train_min_length) != int(train_max_length):
    raise ValueError(f"train_examples={train_examples} needs a fixed training length; got "
                     f"train_min_length={train_min_length} != train_max_length={train_max_length}")
