"""Sequence lengths for length generalisation: train on a range, evaluate at named lengths beyond it.

``train_length(seed, step, min_length, max_length)`` draws the training length of a step uniformly
from ``[min_length, max_length]``. It is a pure function of (seed, step), computed on the host, so a
resumed run sees exactly the lengths of the uninterrupted one. Each distinct length is a distinct
static shape (one compile per length), so keep ranges modest or use ``bucket`` to round lengths up
to a few sizes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def check_length_range(min_length: int, max_length: int) -> None:
  """ValueError unless 1 <= min_length <= max_length."""
  if int(min_length) < 1:
    raise ValueError(f"min_length={min_length}; must be >= 1")
  if int(max_length) < int(min_length):
    raise ValueError(f"length range inverted: max_length={max_length} < min_length={min_length}; "
                     "need min_length <= max_length")


def check_eval_lengths(eval_lengths: Sequence[int]) -> tuple[int, ...]:
  """Returns the evaluation lengths as sorted unique ints; ValueError on an empty list or length < 1."""
  lengths = tuple(sorted({int(n) for n in eval_lengths}))
  if not lengths or lengths[0] < 1:
    raise ValueError(f"eval_lengths={list(eval_lengths)}; need a non-empty list of lengths >= 1")
  return lengths


def train_length(seed: int, step: int, min_length: int, max_length: int) -> int:
  """Training length for ``step``: uniform on [min_length, max_length], deterministic in (seed, step)."""
  check_length_range(min_length, max_length)
  if min_length == max_length:
    return int(min_length)
  rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(step)])
  return int(rng.integers(min_length, max_length + 1))


def bucket(length: int, buckets: Sequence[int]) -> int:
  """The smallest bucket >= length (ValueError if none), to bound the number of compiled shapes."""
  fitting = [b for b in sorted(buckets) if b >= length]
  if not fitting:
    raise ValueError(f"length={length} exceeds the largest bucket in {sorted(buckets)}")
  return int(fitting[0])


def generalisation_split(eval_lengths: Sequence[int],
                         max_train_length: int) -> dict[str, tuple[int, ...]]:
  """Splits evaluation lengths into those seen in training and those beyond it."""
  lengths = check_eval_lengths(eval_lengths)
  return {"in_range": tuple(n for n in lengths if n <= max_train_length),
          "beyond": tuple(n for n in lengths if n > max_train_length)}
