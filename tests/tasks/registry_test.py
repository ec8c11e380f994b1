import jax
import numpy as np
import pytest

from attnlab.tasks import base
from attnlab.tasks import registry
from tests.tasks.task_testing import sample_np


def _length(task):
  return 12 if task.min_length <= 12 else 33  # lengths shared with the task tests: fewer compiles


@pytest.mark.parametrize("name", sorted(registry.TASKS))
def test_shapes_ranges_and_determinism(name):
  task = registry.get_task(name)
  length = _length(task)
  a, again, other = (sample_np(task, s, 8, length) for s in (0, 0, 1))
  rng = jax.random.key(5)
  step0, step1 = ({k: np.asarray(v)
                   for k, v in task.sample(jax.random.fold_in(rng, i), 8, length).items()}
                  for i in (0, 1))
  for k in ("inputs", "targets", "mask"):
    np.testing.assert_array_equal(a[k], again[k])
  assert any(not np.array_equal(a[k], other[k]) for k in ("inputs", "targets"))
  assert any(not np.array_equal(step0[k], step1[k]) for k in ("inputs", "targets"))

  per_token = task.output_kind == base.PER_TOKEN
  assert a["targets"].shape == ((8, length) if per_token else (8,))
  assert a["mask"].shape == a["targets"].shape and a["mask"].dtype == np.float32
  assert set(np.unique(a["mask"])) <= {0.0, 1.0}
  if task.input_kind == base.TOKENS:
    assert a["inputs"].shape == (8, length) and a["inputs"].dtype == np.int32
    assert a["inputs"].min() >= 0 and a["inputs"].max() < task.vocab_size
  if task.output_kind != base.REGRESSION:
    assert a["targets"].dtype == np.int32
    assert a["targets"].min() >= 0 and a["targets"].max() < task.output_size
  with pytest.raises(ValueError, match="length"):
    task.sample(rng, 4, task.min_length - 1) if task.min_length > 1 else task.sample(rng, 4, 0)


@pytest.mark.parametrize("name,fields", [
    ("mqar", {"num_kv_pairs": 3, "noise_rate": 0.2}), ("modular_arithmetic", {})])
def test_jit_equals_no_jit(name, fields):
  task = registry.get_task(name, **fields)
  eager = task.sample(jax.random.key(3), 8, 12)
  jitted = jax.jit(task.sample, static_argnums=(1, 2))(jax.random.key(3), 8, 12)
  for k in eager:
    np.testing.assert_array_equal(np.asarray(eager[k]), np.asarray(jitted[k]))


def test_unknown_name_and_field():
  with pytest.raises(ValueError, match="unknown task name='copyy'; allowed: .*'copy'"):
    registry.get_task("copyy")
  allowed = r"\['alphabet_size', 'distance', 'noise_rate'\]"
  with pytest.raises(ValueError, match=r"unknown config field\(s\) \['d'\]; allowed: " + allowed):
    registry.get_task("distant_dependency", d=3)


def test_parse_fields():
  assert registry.parse_fields("distant_dependency", {"distance": "64", "noise_rate": "0.5"}) == {
      "distance": 64, "noise_rate": 0.5}
  with pytest.raises(ValueError, match="not a valid int"):
    registry.parse_fields("distant_dependency", {"distance": "far"})
