import numpy as np
import pytest

from attnlab.tasks import common
from attnlab.tasks.registry import get_task
from tests.tasks.task_testing import is_distractor
from tests.tasks.task_testing import sample_np


@pytest.mark.parametrize("length", [7, 33])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("noise_rate", [0.0, 0.5])
def test_target_is_the_queried_keys_value(length, seed, noise_rate):
  task = get_task("associative_recall", num_kv_pairs=3, num_keys=4, num_values=5, noise_rate=noise_rate)
  batch = sample_np(task, seed, 8, length)
  for x, y in zip(batch["inputs"], batch["targets"]):
    table = {int(x[2 * i]): int(x[2 * i + 1]) for i in range(3)}
    assert len(table) == 3  # distinct keys
    assert all(common.FIRST_CONTENT <= k < common.FIRST_CONTENT + 4 for k in table)
    assert all(common.FIRST_CONTENT + 4 <= v < common.FIRST_CONTENT + 9 for v in table.values())
    assert y == table[int(x[-1])]
    assert all(t == common.BLANK or (noise_rate and is_distractor(t)) for t in x[6:-1])
  np.testing.assert_array_equal(batch["mask"], np.ones(8))


def test_vocabulary_too_small():
  with pytest.raises(ValueError, match="num_keys=4.*vocabulary too small"):
    get_task("associative_recall", num_kv_pairs=5, num_keys=4)
  with pytest.raises(ValueError, match="noise_rate"):
    get_task("associative_recall", noise_rate=-0.5)
  with pytest.raises(ValueError, match="length >= 17"):
    get_task("associative_recall").sample(None, 2, 16)
