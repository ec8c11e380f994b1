import numpy as np
import pytest

from attnlab.tasks import common
from attnlab.tasks.registry import get_task
from tests.tasks.task_testing import is_distractor
from tests.tasks.task_testing import sample_np


@pytest.mark.parametrize("distance,length", [(1, 2), (5, 12), (16, 33)])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("noise_rate", [0.0, 0.5])
def test_key_exactly_d_before_query(distance, length, seed, noise_rate):
  task = get_task("distant_dependency", distance=distance, alphabet_size=4, noise_rate=noise_rate)
  batch = sample_np(task, seed, 8, length)
  for x, y in zip(batch["inputs"], batch["targets"]):
    assert x[-1] == common.MARKER
    keys = [t for t in range(length) if x[t] >= common.FIRST_CONTENT]
    assert keys == [length - 1 - distance]  # one key, exactly d before the query
    assert y == x[length - 1 - distance] and common.FIRST_CONTENT <= y < common.FIRST_CONTENT + 4
    for t in range(length - 1):
      if t != keys[0]:
        assert x[t] == common.BLANK or (noise_rate and is_distractor(x[t]))
  np.testing.assert_array_equal(batch["mask"], np.ones(8))


def test_measured_noise_rate_matches():
  batch = sample_np(get_task("distant_dependency", distance=100, noise_rate=0.3), 0, 256, 512)
  filler = batch["inputs"][:, :-1]
  filler = np.concatenate([filler[:, :511 - 100], filler[:, 512 - 100:]], axis=1)
  rate = np.mean((filler >= common.FIRST_DISTRACTOR) & (filler < common.FIRST_CONTENT))
  assert abs(rate - 0.3) < 0.005  # 130k filler positions: standard error ~0.0013
  distractor = (filler >= common.FIRST_DISTRACTOR) & (filler < common.FIRST_CONTENT)
  assert np.all((filler == common.BLANK) | distractor)


def test_bad_config():
  with pytest.raises(ValueError, match="distance=16 is longer than the sequence"):
    get_task("distant_dependency", distance=16).sample(None, 2, 16)
  with pytest.raises(ValueError, match="noise_rate=-0.1"):
    get_task("distant_dependency", noise_rate=-0.1)
  with pytest.raises(ValueError, match="distance=0"):
    get_task("distant_dependency", distance=0)
  with pytest.raises(ValueError, match="alphabet_size=1"):
    get_task("distant_dependency", alphabet_size=1)
