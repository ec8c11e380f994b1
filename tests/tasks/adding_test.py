import jax
import numpy as np
import pytest

from attnlab.tasks import adding
from attnlab.tasks.registry import get_task
from tests.tasks.task_testing import sample_np


@pytest.mark.parametrize("length", [2, 33])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_target_is_sum_of_marked_values(length, seed):
  task = get_task("adding")
  batch = sample_np(task, seed, 8, length)
  assert batch["inputs"].shape == (8, length, 2) and task.input_kind == "features"
  for x, y in zip(batch["inputs"], batch["targets"]):
    marked = [t for t in range(length) if x[t, 1] == 1.0]
    assert len(marked) == 2 and marked[0] < length // 2 <= marked[1]
    assert set(np.unique(x[:, 1])) <= {0.0, 1.0}
    assert np.all((x[:, 0] >= 0) & (x[:, 0] < 1))
    np.testing.assert_allclose(y, x[marked[0], 0] + x[marked[1], 0], rtol=1e-6)
  np.testing.assert_array_equal(batch["mask"], np.ones(8))


def test_mean_prediction_baseline_is_about_0167():
  targets = np.asarray(get_task("adding").sample(jax.random.key(0), 4096, 12)["targets"])
  assert abs(np.mean((targets - 1.0) ** 2) - adding.BASELINE_MSE) < 0.015


def test_too_short():
  with pytest.raises(ValueError, match="length >= 2"):
    get_task("adding").sample(None, 2, 1)
