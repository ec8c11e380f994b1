"""Padded sampling (length buckets): row b of a padded batch is row b of the unpadded batch of its
length, followed by filler with mask 0, for every task that pads."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from attnlab.tasks import registry

PADDED = sorted(n for n in registry.TASKS if registry.get_task(n).pads)
P = 24


def test_the_length_generalisation_tasks_pad():
  assert {"parity", "even_pairs", "cycle_navigation", "modular_arithmetic", "reverse_string",
          "duplicate_string", "bucket_sort"} <= set(PADDED)


@pytest.mark.parametrize("name", PADDED)
def test_each_row_is_the_unpadded_example_of_its_length(name):
  task = registry.get_task(name)
  low = task.min_length
  # Longer minimum lengths (MAD's defaults) shift the lengths and the buffer up.
  lengths = np.array([low, 11, 12, P] if low <= 11 else [low, low + 1, low + 2, low + 12])
  padded_length = int(lengths[-1])
  rng = jax.random.key(3)
  padded = jax.tree_util.tree_map(np.asarray, jax.jit(
      lambda r, n: task.sample_padded(r, 4, n, padded_length))(rng, lengths))
  np.testing.assert_array_equal(padded["lengths"], lengths)
  for b, n in enumerate(lengths):
    plain = jax.tree_util.tree_map(np.asarray, task.sample(rng, 4, int(n)))
    np.testing.assert_array_equal(padded["inputs"][b, :n], plain["inputs"][b], err_msg=f"row {b}")
    if task.output_kind == "per_token":
      np.testing.assert_array_equal(padded["targets"][b, :n], plain["targets"][b])
      np.testing.assert_array_equal(padded["mask"][b, :n], plain["mask"][b])
      assert not padded["mask"][b, n:].any()
    else:
      assert padded["targets"][b] == plain["targets"][b] and padded["mask"][b] == 1.0


def test_a_scalar_length_pads_every_row_alike():
  task = registry.get_task("parity")
  batch = task.sample_padded(jax.random.key(0), 3, 5, 8)
  np.testing.assert_array_equal(batch["lengths"], [5, 5, 5])
  assert not np.asarray(batch["inputs"])[:, 5:].any()


def test_tasks_without_a_padded_sampler_say_so():
  with pytest.raises(ValueError, match="no padded sampler.*length_buckets='off'"):
    registry.get_task("copy").sample_padded(jax.random.key(0), 2, 8, 16)
