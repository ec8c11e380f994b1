import numpy as np
import pytest

from attnlab.tasks import common
from attnlab.tasks.registry import get_task
from tests.tasks.task_testing import is_distractor
from tests.tasks.task_testing import sample_np


@pytest.mark.parametrize("length", [9, 33])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("noise_rate", [0.0, 0.3])
def test_targets_are_the_scattered_data_in_order(length, seed, noise_rate):
  n = 4
  task = get_task("selective_copy", num_tokens=n, alphabet_size=5, noise_rate=noise_rate)
  batch = sample_np(task, seed, 8, length)
  context = length - n - 1
  for x, y, m in zip(batch["inputs"], batch["targets"], batch["mask"]):
    data = [t for t in x[:context] if t >= common.FIRST_CONTENT]
    others = [t for t in x[:context] if t < common.FIRST_CONTENT]
    assert len(data) == n
    assert all(t == common.BLANK or (noise_rate and is_distractor(t)) for t in others)
    assert x[context] == common.MARKER
    assert all(t == common.BLANK or is_distractor(t) for t in x[context + 1:])  # no leak
    assert list(y[context + 1:]) == data and not y[:context + 1].any()
    assert list(m) == [0.0] * (context + 1) + [1.0] * n


def test_positions_vary_and_noise_rate():
  task = get_task("selective_copy", num_tokens=4, noise_rate=0.1)
  x = sample_np(task, 0, 128, 33)["inputs"]
  data_at = x[:, :28] >= common.FIRST_CONTENT
  assert len({tuple(np.flatnonzero(r)) for r in data_at}) > 100
  blanks_or_noise = (x < common.FIRST_CONTENT) & (x != common.MARKER)
  rate = np.vectorize(is_distractor)(x).sum() / blanks_or_noise.sum()
  assert abs(rate - 0.1) < 0.02  # ~3000 blanks: standard error ~0.0055


def test_too_short():
  with pytest.raises(ValueError, match="length >= 33"):
    get_task("selective_copy").sample(None, 2, 32)
