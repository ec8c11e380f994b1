import collections

import jax
import numpy as np

from attnlab.tasks import common


def test_choose_mask_is_uniform_over_subsets():
  mask = np.asarray(common.choose_mask(jax.random.key(0), 6000, 4, 2))
  assert np.all(mask.sum(-1) == 2)
  freq = collections.Counter(tuple(np.flatnonzero(r)) for r in mask)
  assert len(freq) == 6  # all C(4, 2) subsets
  for count in freq.values():
    assert abs(count / 6000 - 1 / 6) < 0.02  # standard error ~0.005


def test_place_in_order_and_positions():
  mask = np.array([[0, 1, 0, 1, 1], [1, 1, 0, 0, 1]], bool)
  values = np.array([[7, 8, 9], [4, 5, 6]])
  np.testing.assert_array_equal(common.place_in_order(mask, values, 0),
                                [[0, 7, 0, 8, 9], [4, 5, 0, 0, 6]])
  np.testing.assert_array_equal(common.mask_positions(mask, 3), [[1, 3, 4], [0, 1, 4]])


def test_distinct_symbols():
  symbols = np.asarray(common.distinct_symbols(jax.random.key(1), 500, 6, 3))
  assert all(len(set(r)) == 3 for r in symbols) and symbols.min() >= 0 and symbols.max() < 6
  assert len({tuple(r) for r in symbols}) > 100  # ordered triples: random order, not sorted
