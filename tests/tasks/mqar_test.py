import numpy as np
import pytest

from attnlab.tasks import common
from attnlab.tasks.registry import get_task
from tests.tasks.task_testing import is_distractor
from tests.tasks.task_testing import sample_np


@pytest.mark.parametrize("fields,length", [
    ({"num_kv_pairs": 3}, 12), ({"num_kv_pairs": 4, "num_queries": 2}, 33),
    ({"num_kv_pairs": 2, "num_keys": 2, "num_values": 3, "noise_rate": 0.4}, 33),
    ({"num_kv_pairs": 4, "gap_power": 0.01}, 40)])
@pytest.mark.parametrize("seed", [0, 1])
def test_each_query_answered_with_its_value(fields, length, seed):
  task = get_task("mqar", **fields)
  n, q = task.config.num_kv_pairs, task.config.num_queries or task.config.num_kv_pairs
  batch = sample_np(task, seed, 8, length)
  for x, y, m in zip(batch["inputs"], batch["targets"], batch["mask"]):
    table = {int(x[2 * i]): int(x[2 * i + 1]) for i in range(n)}
    assert len(table) == n
    queried = []
    for t in range(2 * n, length):
      if x[t] in table:
        assert (t - 2 * n) % 2 == 0 and m[t] == 1.0 and y[t] == table[int(x[t])]
        queried.append(int(x[t]))
      else:
        assert m[t] == 0.0 and y[t] == 0
        assert x[t] == common.BLANK or (task.config.noise_rate and is_distractor(x[t]))
    assert len(queried) == len(set(queried)) == q
    assert not m[:2 * n].any() and not y[:2 * n].any()


def test_power_law_gaps_follow_zoology_weights():
  # One query: its offset 2g must be drawn with probability (g + 1)^(a - 1) / sum, as numpy's
  # weighted choice (Zoology's own sampler) draws it. 20k draws: 5 sigma of each frequency.
  n, length, a, draws = 2, 24, 0.3, 20_000
  batch = sample_np(get_task("mqar", num_kv_pairs=n, num_queries=1, gap_power=a), 0, draws, length)
  slots = (length - 2 * n + 1) // 2
  g = (np.argmax(batch["mask"][:, 2 * n:], axis=1)) // 2
  freq = np.bincount(g, minlength=slots) / draws
  p = np.arange(1, slots + 1) ** (a - 1.0)
  p /= p.sum()
  np.testing.assert_allclose(freq, p, atol=5 * np.sqrt(p * (1 - p) / draws).max())
  # Several queries: distinct offsets, and small gaps far more common than with uniform offsets.
  many = sample_np(get_task("mqar", num_kv_pairs=4, gap_power=0.01), 1, 2000, 64)["mask"][:, 8:]
  uniform = sample_np(get_task("mqar", num_kv_pairs=4), 1, 2000, 64)["mask"][:, 8:]
  assert (many.sum(1) == 4).all()
  assert many[:, :8].sum() > 2 * uniform[:, :8].sum()


def test_bad_config():
  with pytest.raises(ValueError, match="num_keys"):
    get_task("mqar", num_kv_pairs=8, num_keys=7)
  with pytest.raises(ValueError, match="gap_power"):
    get_task("mqar", gap_power=-0.5)
  with pytest.raises(ValueError, match="num_queries"):
    get_task("mqar", num_kv_pairs=2, num_queries=3)
  with pytest.raises(ValueError, match="length >= 31"):
    get_task("mqar").sample(None, 2, 30)
