"""Flip-flop: every read target is the last written bit (a plain-Python replay), strings start
with a write and end with a read, instructions follow the configured probabilities."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from attnlab.tasks import flip_flop
from attnlab.tasks import registry


def replay(x, length):
  """(targets, mask) of one row by running its instructions on a one-bit memory."""
  targets, mask = np.zeros(length, np.int64), np.zeros(length, np.float32)
  memory = None
  for j in range(length // 2):
    op, bit = x[2 * j], x[2 * j + 1]
    assert op in (flip_flop.WRITE, flip_flop.IGNORE, flip_flop.READ) and bit in (0, 1)
    if op == flip_flop.WRITE:
      memory = bit
    elif op == flip_flop.READ:
      assert bit == memory, "a read shows the last written bit"
      targets[2 * j], mask[2 * j] = memory, 1.0
  return targets, mask


@pytest.mark.parametrize("p_ignore,length", [(0.8, 64), (0.1, 33), (0.98, 64)])
def test_read_targets_are_the_last_written_bit(p_ignore, length):
  task = registry.get_task("flip_flop", **vars(flip_flop.variant(p_ignore)))
  b = {k: np.asarray(v) for k, v in jax.jit(task.sample, static_argnums=(1, 2))(
      jax.random.key(0), 256, length).items()}
  pairs = length // 2
  for x, y, m in zip(b["inputs"], b["targets"], b["mask"]):
    assert x[0] == flip_flop.WRITE and x[2 * pairs - 2] == flip_flop.READ
    targets, mask = replay(x, length)
    np.testing.assert_array_equal(m, mask)
    np.testing.assert_array_equal(y, targets)
    if length % 2:
      assert x[-1] == flip_flop.IGNORE and m[-1] == 0
  inner = b["inputs"][:, 2:2 * pairs - 2:2]  # the drawn instructions
  for op, p in ((flip_flop.WRITE, (1 - p_ignore) / 2), (flip_flop.IGNORE, p_ignore)):
    assert abs((inner == op).mean() - p) < 0.02


def test_variants_and_bad_probabilities():
  assert flip_flop.variant(flip_flop.VARIANTS["sparse"]).p_read == pytest.approx(0.01)
  with pytest.raises(ValueError, match="must sum to 1"):
    registry.get_task("flip_flop", p_write=0.5)
  with pytest.raises(ValueError, match="p_read=-0.1"):
    registry.get_task("flip_flop", p_read=-0.1, p_ignore=1.0)
