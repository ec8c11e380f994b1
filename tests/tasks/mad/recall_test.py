"""MAD in-context and noisy recall against a plain-Python reading of each row."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from attnlab.tasks import registry


def sample(task, seed, batch_size, length):
  batch = jax.jit(task.sample, static_argnums=(1, 2))(jax.random.key(seed), batch_size, length)
  return {k: np.asarray(v) for k, v in batch.items()}


def expected_row(x, y_last, config, length):
  """(targets, mask) by replaying the row's pairs; asserts the row is well formed."""
  vocab, content = config.vocab_size, config.vocab_size - config.noise_vocab_size
  keys = content // 2
  pairs = (length + 1) // 2
  shift = length - (2 * pairs - 1)
  assert list(x[:shift]) == [vocab] * shift  # the filler id
  seq = list(x[shift:]) + [y_last]
  targets, mask = np.zeros(length, np.int64), np.zeros(length, np.float32)
  table, noise_pairs = {}, 0
  for j in range(pairs):
    k, v = seq[2 * j], seq[2 * j + 1]
    if k >= content:  # a noise pair
      assert j < pairs - 1 and content <= v < vocab
      noise_pairs += 1
      continue
    assert 0 <= k < keys and keys <= v < content
    if k in table:
      assert table[k] == v, "a key keeps its value within a row"
      targets[shift + 2 * j], mask[shift + 2 * j] = v, 1.0
    else:
      assert j < pairs - 1, "the final query asks a key shown before"
      table[k] = v
  return targets, mask, noise_pairs


@pytest.mark.parametrize("name,fields,length", [
    ("mad_in_context_recall", {}, 33), ("mad_in_context_recall", {"vocab_size": 8}, 12),
    ("mad_noisy_recall", {"frac_noise": 0.5}, 33)])
def test_targets_are_the_values_of_keys_shown_before(name, fields, length):
  task = registry.get_task(name, **fields)
  batch = sample(task, 0, 64, length)
  noise = 0
  for x, y, m in zip(batch["inputs"], batch["targets"], batch["mask"]):
    assert m[-1] == 1.0  # the final query is always scored
    targets, mask, noise_pairs = expected_row(x, y[-1], task.config, length)
    np.testing.assert_array_equal(m, mask)
    np.testing.assert_array_equal(np.where(m > 0, y, 0), targets)
    noise += noise_pairs
  pairs = (length + 1) // 2 - 1
  if task.config.frac_noise:  # every stream pair but one may be noise
    rate = noise / (64 * pairs)
    assert abs(rate - task.config.frac_noise * (pairs - 1) / pairs) < 0.05
  else:
    assert noise == 0


def test_query_is_uniform_over_the_distinct_keys_shown():
  # Rows of four pairs: three stream pairs, then the query. Shown a, a, b (a != b): MAD picks among
  # the distinct keys, so a and b are equally likely (not 2:1, as by occurrence).
  task = registry.get_task("mad_in_context_recall", vocab_size=8)
  x = sample(task, 1, 4000, 7)["inputs"]
  rows = (x[:, 0] == x[:, 2]) & (x[:, 0] != x[:, 4])
  assert rows.sum() > 500
  assert abs((x[rows, 6] == x[rows, 0]).mean() - 0.5) < 0.07


def test_bad_fields_name_themselves():
  with pytest.raises(ValueError, match="frac_noise=1.0"):
    registry.get_task("mad_noisy_recall", frac_noise=1.0)
  with pytest.raises(ValueError, match="vocab_size"):
    registry.get_task("mad_noisy_recall", vocab_size=18)
  with pytest.raises(ValueError, match="needs noise_vocab_size"):
    registry.get_task("mad_in_context_recall", frac_noise=0.2)
