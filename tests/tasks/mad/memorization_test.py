"""MAD memorization: one fixed, one-to-one key-value map behind every example."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from attnlab.tasks import registry
from attnlab.tasks.mad import memorization


def test_every_example_follows_one_fixed_injective_map():
  task = registry.get_task("mad_memorization", vocab_size=33)
  sample = jax.jit(task.sample, static_argnums=(1, 2))
  seen = {}
  for seed, length in ((0, 16), (1, 17)):
    b = {n: np.asarray(v) for n, v in sample(jax.random.key(seed), 32, length).items()}
    pairs = length // 2
    assert (b["inputs"][:, 1:2 * pairs:2] == 32).all()  # the insert token
    np.testing.assert_array_equal(b["mask"][0], [t % 2 == 1 and t < 2 * pairs
                                                for t in range(length)])
    for x, y in zip(b["inputs"], b["targets"]):
      for j in range(pairs):
        key, value = int(x[2 * j]), int(y[2 * j + 1])
        assert 0 <= key < 16 and 16 <= value < 32
        assert seen.setdefault(key, value) == value
  assert len(seen) == 16 and len(set(seen.values())) == 16  # every key seen, values distinct
  other = memorization.value_of(memorization.MemorizationConfig(vocab_size=33, map_seed=1))
  assert list(np.asarray(other)) != [seen[k] for k in range(16)]  # map_seed picks the map


def test_bad_fields_name_themselves():
  with pytest.raises(ValueError, match="vocab_size=2"):
    registry.get_task("mad_memorization", vocab_size=2)
