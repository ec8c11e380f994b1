"""MAD fuzzy recall against a plain-Python reading of each row: keys and values of several tokens,
one value per key within a row, targets on the values of keys shown before."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from attnlab.tasks import registry
from attnlab.tasks.mad import fuzzy_recall

LENGTH = 40


def pairs_of(tokens, keys, content, partial_last=False):
  """[(key tuple, value tuple, start)] of a token run (keys and values alternate by id range);
  ``partial_last``: the last value may be cut short."""
  out, i = [], 0
  while i < len(tokens):
    start = i
    while i < len(tokens) and tokens[i] < keys:
      i += 1
    key = tuple(tokens[start:i])
    v0 = i
    while i < len(tokens) and keys <= tokens[i] < content:
      i += 1
    out.append((key, tuple(tokens[v0:i]), start))
    assert key and (i > v0 or partial_last and i == len(tokens)), f"bad pair at {start}: {tokens}"
  return out


@pytest.fixture(scope="module")
def batch():
  task = registry.get_task("mad_fuzzy_recall")
  out = jax.jit(task.sample, static_argnums=(1, 2))(jax.random.key(0), 128, LENGTH)
  return task, {k: np.asarray(v) for k, v in out.items()}


def test_rows_are_key_value_pairs_with_one_value_per_key(batch):
  task, b = batch
  cfg = task.config
  content = cfg.vocab_size - 1
  keys = content // 2
  sizes, shown_query = set(), 0
  for x, y, m in zip(b["inputs"], b["targets"], b["mask"]):
    shift = int(np.argmax(x != content))
    assert shift >= 2 and (x[:shift] == content).all()  # MAD's left padding
    # The instance's last token is outside the row: the last target when it is scored.
    seq = [int(t) for t in x[shift:]] + ([int(y[-1])] if m[-1] else [])
    pairs = pairs_of(seq, keys, content, partial_last=not m[-1])
    table, want = {}, np.zeros(LENGTH + 1, np.float32)
    for j, (k, v, start) in enumerate(pairs):
      assert len(k) <= cfg.k_motif_size and len(set(k)) == len(k)
      assert len(v) <= cfg.v_motif_size and len(set(v)) == len(v)
      last = j == len(pairs) - 1
      if not last:
        sizes.add((len(k), len(v)))
      if k in table:
        if not last or m[-1]:
          assert table[k] == v, "a key keeps its value within a row"
        # Each value token is the target of the position before it.
        for p in range(start + len(k), start + len(k) + len(v)):
          want[shift + p - 1] = 1.0
      else:
        table[k] = v
    shown_query += int(m[-1])
    np.testing.assert_array_equal(m, want[:LENGTH])
    full = np.array(list(x) + [y[-1]])
    np.testing.assert_array_equal(y[m > 0], full[1:][m > 0])
  assert shown_query / len(b["inputs"]) > 0.9  # MAD inserts the probe pair into the stream
  assert len(sizes) == 9  # every key size with every value size


def test_motifs_are_uniform_over_ordered_distinct_choices():
  motifs = np.asarray(fuzzy_recall._motifs(jax.random.key(0), (24_000,), 4, 2, 3))
  assert (motifs[:, 0] != motifs[:, 1]).all() and motifs.min() == 3 and motifs.max() == 6
  _, counts = np.unique(motifs, axis=0, return_counts=True)
  assert len(counts) == 12  # 4 x 3 ordered pairs, each 1/12: 2000 +- 43
  assert np.abs(counts - 2000).max() < 200


def test_bad_fields_name_themselves():
  with pytest.raises(ValueError, match="vocab_size=6 is too small"):
    registry.get_task("mad_fuzzy_recall", vocab_size=6)
  with pytest.raises(ValueError, match="k_motif_size"):
    registry.get_task("mad_fuzzy_recall", k_motif_size=0)
  with pytest.raises(ValueError, match="length >= 13"):
    registry.get_task("mad_fuzzy_recall").sample(jax.random.key(0), 2, 12)
