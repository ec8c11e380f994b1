import numpy as np
import pytest

from attnlab.tasks.registry import get_task
from tests.tasks.task_testing import sample_np


@pytest.mark.parametrize("length", [1, 2, 33])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parity_by_loop(length, seed):
  batch = sample_np(get_task("parity"), seed, 8, length)
  for x, y in zip(batch["inputs"], batch["targets"]):
    odd = 0
    for bit in x:
      assert bit in (0, 1)
      if bit == 1:
        odd = 1 - odd
    assert y == odd
  np.testing.assert_array_equal(batch["mask"], np.ones(8))


@pytest.mark.parametrize("length", [1, 2, 33])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_even_pairs_by_counting_ab_and_ba(length, seed):
  batch = sample_np(get_task("even_pairs"), seed, 8, length)
  for x, y in zip(batch["inputs"], batch["targets"]):
    s = "".join("ab"[b] for b in x)
    pairs = sum(s[i:i + 2] in ("ab", "ba") for i in range(len(s) - 1))
    assert y == (pairs % 2 == 0)
  assert 0 < batch["targets"].mean() < 1 or length == 1


@pytest.mark.parametrize("length", [1, 33])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("cycle_length", [5, 3])
def test_cycle_navigation_by_walking(length, seed, cycle_length):
  batch = sample_np(get_task("cycle_navigation", cycle_length=cycle_length), seed, 8, length)
  for x, y in zip(batch["inputs"], batch["targets"]):
    pos = 0
    for move in x:
      pos = {0: pos, 1: (pos + 1) % cycle_length, 2: (pos - 1) % cycle_length}[int(move)]
    assert y == pos


def test_bad_config():
  with pytest.raises(ValueError, match="cycle_length=1"):
    get_task("cycle_navigation", cycle_length=1)
  with pytest.raises(ValueError, match="length >= 1"):
    get_task("parity").sample(None, 2, 0)
