"""The token rule of the MAD tasks: MAD's own ids, plus ``pad_id(vocab_size) = vocab_size``.

MAD's vocabularies use every id for keys, values, noise and its special tokens, so the filler this
framework needs (positions past a row's length in padded batches, and positions that are not part
of MAD's instance) gets the one id after them. Models embed ``vocab_size + 1`` ids; targets are
always MAD tokens, so ``output_size == vocab_size``.
"""

from __future__ import annotations

import functools

from attnlab.tasks import base


def pad_id(vocab_size: int) -> int:
  return vocab_size


def check_fraction(field: str, value: float, *, below_one: bool = True) -> None:
  """ValueError naming ``field`` unless 0 <= value < 1 (or <= 1)."""
  ok = 0.0 <= value < 1.0 if below_one else 0.0 <= value <= 1.0
  if not ok:
    raise ValueError(f"{field}={value}; allowed: a fraction in [0, {'1)' if below_one else '1]'}")


def make(name: str, config, padded_sample, vocab_size: int, min_length: int) -> base.Task:
  padded = functools.partial(padded_sample, config)
  return base.Task(name=name, config=config, vocab_size=vocab_size + 1, output_size=vocab_size,
                   output_kind=base.PER_TOKEN, sample_fn=base.unpadded(padded),
                   padded_sample_fn=padded, min_length=min_length)
