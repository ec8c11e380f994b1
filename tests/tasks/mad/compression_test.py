"""MAD compression: the instance (random tokens, then the compression token) is answered in order
in the slots after it."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from attnlab.tasks import registry


@pytest.mark.parametrize("length", [12, 13])
def test_slots_answer_the_instance(length):
  task = registry.get_task("mad_compression", vocab_size=6)
  b = {n: np.asarray(v) for n, v in jax.jit(task.sample, static_argnums=(1, 2))(
      jax.random.key(0), 16, length).items()}
  m = length // 2
  pad = task.vocab_size - 1
  for x, y, mask in zip(b["inputs"], b["targets"], b["mask"]):
    assert x[m - 1] == 5 and (x[:m - 1] < 5).all()
    assert (x[m:] == pad).all()
    np.testing.assert_array_equal(y[m:2 * m], x[:m])
    np.testing.assert_array_equal(mask, (np.arange(length) >= m) & (np.arange(length) < 2 * m))


def test_bad_fields_name_themselves():
  with pytest.raises(ValueError, match="vocab_size=2"):
    registry.get_task("mad_compression", vocab_size=2)
