import numpy as np
import pytest

from attnlab.tasks import induction_heads
from attnlab.tasks.registry import get_task
from tests.tasks.task_testing import sample_np


@pytest.mark.parametrize("length", [3, 33])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_target_follows_the_first_trigger(length, seed):
  task = get_task("induction_heads", alphabet_size=5)
  batch = sample_np(task, seed, 8, length)
  for x, y in zip(batch["inputs"], batch["targets"]):
    triggers = [t for t in range(length) if x[t] == induction_heads.TRIGGER]
    assert len(triggers) == 2 and triggers[1] == length - 1 and triggers[0] <= length - 3
    assert y == x[triggers[0] + 1] and 1 <= y <= 5
  np.testing.assert_array_equal(batch["mask"], np.ones(8))


def test_too_short():
  with pytest.raises(ValueError, match="length >= 3"):
    get_task("induction_heads").sample(None, 2, 2)
