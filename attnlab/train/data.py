"""The data path: which batch each step trains on, the length it is compiled for, and every key.

Every key comes from the config's four seeds and every batch is a function of the step, so a run
resumed at step S sees the batches of the uninterrupted run:
  init     ``PRNGKey(seed)``: the parameters;
  dropout  ``fold_in(PRNGKey(seed), 1)``, folded with the step (and under pmap the device index);
  data     ``PRNGKey(data_seed)``: batch S from ``fold_in(data, S)``, its per-example lengths from
           ``fold_in(fold_in(data, S), 2**20)``, or with ``train_examples`` its examples of a fixed
           set (``finite.py``); step S's training length on the host from ``(data_seed, S)``;
  eval     ``PRNGKey(eval_seed)`` (test), ``PRNGKey(val_seed)`` (validation): evaluation batch i
           at length n from ``fold_in(fold_in(eval, n), i)``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from attnlab.tasks import base
from attnlab.tasks import lengths as lengths_lib
from attnlab.train import finite


def dropout_key(seed: int) -> jax.Array:
  return jax.random.fold_in(jax.random.PRNGKey(seed), 1)  # a stream apart from the init key


# The finite set's fold_in tags under the data key: above any step number, so never a batch's key.
_SET_TAG, _ORDER_TAG = 2 ** 31 - 1, 2 ** 31 - 2


def set_key(data: jax.Array) -> jax.Array:
  """The finite training set's examples (``train_examples``)."""
  return jax.random.fold_in(data, _SET_TAG)


def order_key(data: jax.Array) -> jax.Array:
  """The order of the finite training set's epochs."""
  return jax.random.fold_in(data, _ORDER_TAG)


def buckets(config, task: base.Task, lengths) -> tuple[int, ...] | None:
  """``config.length_buckets`` resolved over the lengths a run uses; None: exact lengths."""
  return lengths_lib.resolve_buckets(config.get("length_buckets", "auto"), lengths, task.pads)


def sample(task: base.Task, rng, batch_size: int, length, padded_length: int) -> dict:
  """A batch of ``padded_length`` exactly (``length`` None), or padded to it with ``length``
  (traced, a scalar or per row) carried in the batch."""
  if length is None:
    return task.sample(rng, batch_size, padded_length)
  return task.sample_padded(rng, batch_size, length, padded_length)


def eval_batch(task: base.Task, key, batch_size: int, i, length, padded_length: int) -> dict:
  """Evaluation batch ``i`` at ``length`` (None: ``padded_length`` exactly), from the eval key."""
  n = padded_length if length is None else length
  return sample(task, jax.random.fold_in(jax.random.fold_in(key, n), i), batch_size, length,
                padded_length)


@dataclasses.dataclass(frozen=True, eq=False)
class TrainData:
  """Training batches: ``length(step)`` and ``program(length)`` on the host, ``batch(...)`` inside
  the compiled step."""
  task: base.Task
  batch_size: int  # the global batch
  seed: int  # data_seed: the lengths of the steps
  key: jax.Array  # PRNGKey(data_seed): the batches
  min_length: int
  max_length: int
  buckets: tuple[int, ...] | None  # the run's length buckets; None: exact lengths
  per_example: bool  # each example's length drawn in the step (needs buckets)
  examples: int = 0  # train_examples: 0, a fresh batch every step; N, a fixed set of N examples

  @classmethod
  def from_config(cls, config, task: base.Task, buckets) -> TrainData:
    return cls(task=task, batch_size=config.batch_size, seed=config.data_seed,
               key=jax.random.PRNGKey(config.data_seed), min_length=int(config.train_min_length),
               max_length=int(config.train_max_length), buckets=buckets,
               per_example=config.get("train_length_draw", "batch") == "example",
               examples=int(config.get("train_examples", 0)))

  def length(self, step: int) -> int:
    """Step ``step``'s training length (logged; per-example lengths are drawn in the step)."""
    return lengths_lib.train_length(self.seed, step, self.min_length, self.max_length)

  def program(self, length: int) -> tuple[jax.Array | None, int]:
    """(the traced length, the static padded length) of the program training at ``length``: with
    buckets, the bucket of ``length`` (one program serves a bucket), else None and ``length``."""
    if self.buckets is None:
      return None, int(length)
    if self.per_example:  # every row drawn in the step; the batch padded to the longest's bucket
      length = self.max_length
    return jnp.int32(length), lengths_lib.bucket_of(length, self.buckets)

  def batch(self, step, length, padded_length: int) -> dict:
    """The global batch number ``step`` (traced): every batch a run trains on is made here."""
    if self.examples:  # the fixed set has one training length (config checks): nothing to draw
      indices_B = finite.batch_indices(order_key(self.key), step, self.batch_size, self.examples)
      return finite.examples(lambda rng: sample(self.task, rng, 1, length, padded_length),
                             set_key(self.key), indices_B)
    rng = jax.random.fold_in(self.key, step)
    if self.per_example and length is not None:
      length = jax.random.randint(jax.random.fold_in(rng, 1 << 20), (self.batch_size,),
                                  self.min_length, self.max_length + 1, dtype=jnp.int32)
    return sample(self.task, rng, self.batch_size, length, padded_length)
