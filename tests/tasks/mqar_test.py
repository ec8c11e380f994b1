import numpy as np
import pytest

from attnlab.tasks import common
from attnlab.tasks.registry import get_task
from tests.tasks.task_testing import is_distractor
from tests.tasks.task_testing import sample_np


@pytest.mark.parametrize("fields,length", [
    ({"num_kv_pairs": 3}, 12), ({"num_kv_pairs": 4, "num_queries": 2}, 33),
    ({"num_kv_pairs": 2, "num_keys": 2, "num_values": 3, "noise_rate": 0.4}, 33)])
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


def test_bad_config():
  with pytest.raises(ValueError, match="num_keys"):
    get_task("mqar", num_kv_pairs=8, num_keys=7)
  with pytest.raises(ValueError, match="num_queries"):
    get_task("mqar", num_kv_pairs=2, num_queries=3)
  with pytest.raises(ValueError, match="length >= 31"):
    get_task("mqar").sample(None, 2, 30)
