import pytest

from attnlab.tasks.registry import get_task
from tests.tasks.task_testing import sample_np


@pytest.mark.parametrize("length", [1, 12, 33])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("modulus", [5, 7])
def test_targets_by_python_eval(length, seed, modulus):
  task = get_task("modular_arithmetic", modulus=modulus)
  batch = sample_np(task, seed, 8, length)
  symbols = {modulus: "+", modulus + 1: "-", modulus + 2: "*"}
  for x, y in zip(batch["inputs"], batch["targets"]):
    if length % 2 == 0:
      assert x[0] == modulus + 3  # one leading blank pads an even length
      x = x[1:]
    text = "".join(symbols[t] if t >= modulus else str(t) for t in x)
    assert all(t < modulus for t in x[::2]) and all(modulus <= t < modulus + 3 for t in x[1::2])
    assert y == eval(text) % modulus, text  # Python: products first, % is non-negative
