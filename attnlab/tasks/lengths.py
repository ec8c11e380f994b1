"""Sequence lengths for length generalisation: train on a range, evaluate at named lengths beyond it.

``train_length(seed, step, min_length, max_length)`` draws the training length of a step uniformly
from ``[min_length, max_length]``. It is a pure function of (seed, step), computed on the host, so a
resumed run sees exactly the lengths of the uninterrupted one. Each distinct length is a distinct
static shape (one compile per length) unless the run pads to length buckets.

Length buckets (config ``length_buckets``): each batch is right-padded to the smallest bucket that
holds it and carries its true lengths, so one compiled program serves every length of a bucket.
``resolve_buckets`` turns the config value into the run's buckets: ``"off"`` (exact lengths),
``"pow2"`` (powers of two from ``MIN_BUCKET``), an explicit increasing list (``"64,128,512"``), or
``"auto"`` (the default): ``"pow2"`` when the run has more than ``AUTO_MAX_LENGTHS`` distinct
lengths and its task samples padded batches, else ``"off"``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def check_length_range(min_length: int, max_length: int,
                       names: tuple[str, str] = ("min_length", "max_length")) -> None:
  """ValueError unless 1 <= min_length <= max_length, naming them as ``names`` (the fields)."""
  lo, hi = names
  if int(min_length) < 1:
    raise ValueError(f"{lo}={min_length}; must be >= 1")
  if int(max_length) < int(min_length):
    raise ValueError(f"length range inverted: {hi}={max_length} < {lo}={min_length}; "
                     f"need {lo} <= {hi}")


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


BUCKET_RULES = ("auto", "off", "pow2")
MIN_BUCKET = 8  # the smallest power-of-two bucket: shorter batches are padded to it
AUTO_MAX_LENGTHS = 8  # "auto" pads only runs with more distinct lengths than this


def parse_buckets(spec: Any) -> str | tuple[int, ...]:
  """``length_buckets`` as a rule name or an increasing tuple of positive lengths (ValueError
  naming the field otherwise)."""
  allowed = f"allowed: one of {BUCKET_RULES} or an increasing list of positive lengths"
  if isinstance(spec, str) and spec.strip() in BUCKET_RULES:
    return spec.strip()
  items = spec.split(",") if isinstance(spec, str) else list(spec)
  try:
    buckets = tuple(int(str(item).strip()) for item in items)
  except ValueError:
    raise ValueError(f"length_buckets={spec!r}; {allowed}") from None
  if not buckets or min(buckets) < 1:
    raise ValueError(f"length_buckets={spec!r} holds a non-positive length; {allowed}")
  if list(buckets) != sorted(set(buckets)):
    raise ValueError(f"length_buckets={spec!r} is not strictly increasing; {allowed}")
  return buckets


def resolve_buckets(spec: Any, lengths: Sequence[int], pads: bool) -> tuple[int, ...] | None:
  """The run's buckets for all its ``lengths`` (training and evaluation), or None (exact lengths).

  ``pads``: whether the task samples padded batches. ValueError for an explicit list that does not
  cover the longest length, or buckets asked of a task that cannot pad.
  """
  rule = parse_buckets(spec)
  longest = max(int(n) for n in lengths)
  if rule == "auto":
    rule = "pow2" if pads and len(set(lengths)) > AUTO_MAX_LENGTHS else "off"
  if rule == "off":
    return None
  if not pads:
    raise ValueError(f"length_buckets={spec!r}: this task samples no padded batches; "
                     "allowed here: 'off' or 'auto'")
  if rule == "pow2":
    buckets = [MIN_BUCKET]
    while buckets[-1] < longest:
      buckets.append(2 * buckets[-1])
    return tuple(buckets)
  if rule[-1] < longest:
    raise ValueError(f"length_buckets={spec!r} does not cover the longest train or eval length "
                     f"{longest}; the last bucket must be >= {longest}")
  return rule


def bucket_of(length: int, buckets: Sequence[int] | None) -> int:
  """The padded length of a batch of ``length`` (itself when buckets are off)."""
  return int(length) if buckets is None else bucket(length, buckets)
