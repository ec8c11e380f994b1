import numpy as np
import pytest

from attnlab.tasks import common
from attnlab.tasks.registry import get_task
from tests.tasks.task_testing import is_distractor
from tests.tasks.task_testing import sample_np


@pytest.mark.parametrize("name,fields,length", [
    ("copy", {}, 33), ("delayed_copy", {"num_tokens": 3}, 12),
    ("copy", {"num_tokens": 2, "alphabet_size": 3}, 12)])
@pytest.mark.parametrize("seed", [0, 1])
def test_targets_are_the_data_after_the_marker(name, fields, length, seed):
  task = get_task(name, **fields)
  batch = sample_np(task, seed, 8, length)
  n = fields.get("num_tokens", 10 if name == "delayed_copy" else 0) or (length - 1) // 2
  a = task.config.alphabet_size
  for x, y, m in zip(batch["inputs"], batch["targets"], batch["mask"]):
    data = list(x[:n])
    assert all(common.FIRST_CONTENT <= t < common.FIRST_CONTENT + a for t in data)
    want_inputs = data + [common.BLANK] * (length - 2 * n - 1) + [common.MARKER] + [common.BLANK] * n
    assert list(x) == want_inputs  # the answer slots hold no data: nothing leaks
    assert list(y) == [0] * (length - n) + data
    assert list(m) == [0.0] * (length - n) + [1.0] * n


def test_noise_only_on_blanks_and_at_the_rate():
  task = get_task("delayed_copy", num_tokens=4, noise_rate=0.25)
  batch = sample_np(task, 3, 128, 64)
  clean = sample_np(get_task("delayed_copy", num_tokens=4), 3, 128, 64)
  x, x0 = batch["inputs"], clean["inputs"]
  changed = x != x0
  assert np.all(x0[changed] == common.BLANK)
  assert all(is_distractor(t) for t in x[changed])
  rate = changed.sum() / (x0 == common.BLANK).sum()
  assert abs(rate - 0.25) < 0.02
  np.testing.assert_array_equal(batch["targets"], clean["targets"])


def test_too_short_and_bad_fields():
  with pytest.raises(ValueError, match="length >= 21"):
    get_task("delayed_copy").sample(None, 2, 20)
  with pytest.raises(ValueError, match="noise_rate"):
    get_task("copy", noise_rate=-0.1)
  with pytest.raises(ValueError, match="alphabet_size"):
    get_task("copy", alphabet_size=1)
