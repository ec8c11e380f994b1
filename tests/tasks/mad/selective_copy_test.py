"""MAD selective copying: the data tokens, in order, answered after the copy token; blanks land
before a uniformly chosen data token each (MAD's np.insert)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from attnlab.tasks import registry


def test_answers_are_the_data_tokens_in_order_and_gaps_are_multinomial():
  k, length, rows = 4, 29, 2000
  task = registry.get_task("mad_selective_copy", vocab_size=8, num_tokens=k)
  b = {n: np.asarray(v) for n, v in jax.jit(task.sample, static_argnums=(1, 2))(
      jax.random.key(0), rows, length).items()}
  blank, copy = 6, 7
  gaps = []
  for x, y, m in zip(b["inputs"], b["targets"], b["mask"]):
    assert x[length - k - 1] == copy and (x[length - k:] == blank).all()
    context = x[:length - k - 1]
    data = context[context != blank]
    assert len(data) == k and (data < blank).all()
    assert context[-1] != blank  # the last data token sits right before the copy token
    np.testing.assert_array_equal(y[length - k:], data)
    np.testing.assert_array_equal(m, np.r_[np.zeros(length - k), np.ones(k)])
    where = np.flatnonzero(context != blank)
    gaps.append(np.diff(np.r_[-1, where]) - 1)
  gaps = np.array(gaps)
  blanks = length - 2 * k - 1
  # Multinomial(blanks, 1/k per token): mean blanks/k and variance blanks (1/k)(1 - 1/k) per gap;
  # uniform positions would give a larger variance.
  np.testing.assert_allclose(gaps.mean(0), blanks / k, atol=0.15)
  np.testing.assert_allclose(gaps.var(0), blanks * (1 / k) * (1 - 1 / k), rtol=0.12)


def test_bad_fields_name_themselves():
  with pytest.raises(ValueError, match="num_tokens"):
    registry.get_task("mad_selective_copy", num_tokens=0)
  with pytest.raises(ValueError, match="length >= 33"):
    registry.get_task("mad_selective_copy").sample(jax.random.key(0), 2, 32)
