import pytest

from attnlab.tasks import common
from attnlab.tasks.chomsky import strings
from attnlab.tasks.registry import get_task
from tests.tasks.task_testing import sample_np

REFERENCE = {
    "reverse_string": lambda s: s[::-1],
    "duplicate_string": lambda s: s + s,
    "bucket_sort": sorted,
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
@pytest.mark.parametrize("length,string_length", [(12, 0), (33, 0), (33, 3)])
@pytest.mark.parametrize("seed", [0, 1])
def test_answer_slots_hold_the_transformed_string(name, length, string_length, seed):
  task = get_task(name, string_length=string_length)
  factor = 2 if name == "duplicate_string" else 1
  n = string_length or (length - 1) // (factor + 1)
  batch = sample_np(task, seed, 8, length)
  for x, y, m in zip(batch["inputs"], batch["targets"], batch["mask"]):
    s = [int(t) for t in x[:n]]
    assert all(strings.FIRST_SYMBOL <= t < task.vocab_size for t in s)
    assert x[n] == common.MARKER and not x[n + 1:].any()  # answer slots blank: nothing leaks
    out = REFERENCE[name](s)
    assert list(y) == [0] * (length - len(out)) + list(out)
    assert list(m) == [0.0] * (length - len(out)) + [1.0] * len(out)


def test_too_short():
  with pytest.raises(ValueError, match="length >= 13"):
    get_task("duplicate_string", string_length=4).sample(None, 2, 12)
