"""Block plan of the memory-efficient attention: which key blocks each query block visits."""

from __future__ import annotations

import numpy as np
import pytest

from attnlab.models.attention import chunked_blocks as ab


def test_causal_skips_hidden_blocks():
  """Only blocks on or below the diagonal run; only the diagonal ones are masked."""
  p = ab.Plan(l=64, s=64, bq=8, nq=8, bk=8, nk=8, causal=True, has_mask=False, dropout_rate=0.0)
  ranges = [tuple(int(x) for x in ab.key_range(p, i)) for i in range(8)]
  assert ranges == [(i, i + 1) for i in range(8)]  # 36 of 64 blocks, 8 of them masked
  dense = ab.Plan(l=64, s=64, bq=8, nq=8, bk=8, nk=8, causal=False, has_mask=False,
                   dropout_rate=0.0)
  assert [tuple(int(x) for x in ab.key_range(dense, i)) for i in range(8)] == [(8, 8)] * 8


def _window_plan(l, s, bq, bk, window, has_mask=False):
  return ab.Plan(l=l, s=s, bq=bq, nq=-(-l // bq), bk=bk, nk=-(-s // bk), causal=True,
                 has_mask=has_mask, dropout_rate=0.0, window=window)


def _runs(p):
  """(n_lo, n_in, n_full, n_hi) of every query block, as int arrays [nq]."""
  i = np.arange(p.nq)
  return tuple(np.asarray(x) for x in ab.window_range(p, i) + ab.key_range(p, i))


@pytest.mark.parametrize("l, s, bq, bk, window, has_mask", [
    (64, 64, 8, 8, 3, False),  # window inside a block
    (64, 64, 8, 8, 20, False),  # 2.5 blocks: some blocks whole inside the window
    (37, 53, 8, 16, 9, False),  # causal offset, rectangular blocks, padded keys
    (53, 37, 16, 8, 30, False),  # L > S: early query blocks see nothing
    (64, 64, 8, 8, 20, True),  # a mask: every visited block masked
    (24, 24, 8, 8, 100, False),  # window longer than the keys: plain causal
])
def test_window_visits_exactly_the_blocks_it_sees(l, s, bq, bk, window, has_mask):
  """The plan against positions: the run [n_lo, n_hi) is every block some real query sees in its
  window, and the unmasked run [n_in, n_full) only blocks that every real query sees whole."""
  p = _window_plan(l, s, bq, bk, window, has_mask)
  n_lo, n_in, n_full, n_hi = _runs(p)
  assert np.all((n_lo <= n_in) & (n_in <= n_full) & (n_full <= n_hi))
  q_pos = np.arange(p.nq * p.bq)[:, None] + (s - l)
  k_pos = np.arange(p.nk * p.bk)[None, :]
  seen = (k_pos <= q_pos) & (k_pos > q_pos - window) & (k_pos < s)
  seen[l:] = False  # padded queries
  for i in range(p.nq):
    rows = seen[i * bq:min((i + 1) * bq, l)].reshape(-1, p.nk, bk)  # [queries, block, key]
    visible = np.flatnonzero(rows.any(axis=(0, 2)))
    whole = rows.all(axis=(0, 2)) if len(rows) else np.zeros(p.nk, bool)
    assert list(range(n_lo[i], n_hi[i])) == list(visible), i
    assert whole[n_in[i]:n_full[i]].all(), i
    if has_mask:
      assert n_in[i] == n_full[i], i


def test_window_cost_is_linear_in_length():
  """Key blocks visited: a constant per query block with a window, a triangle without."""
  def visited(length, window):
    p = _window_plan(length, length, 1024, 1024, window)
    if window is None:
      return np.asarray(ab.key_range(p, np.arange(p.nq))[1])  # [0, n_hi)
    n_lo, _, _, n_hi = _runs(p)
    return n_hi - n_lo

  per_block = visited(65536, 512)
  assert per_block[0] == 1 and np.all(per_block[1:] == 2)  # the window's edge block, the diagonal
  assert visited(2 * 65536, 512).sum() == 2 * per_block.sum() + 1
  assert visited(65536, None).sum() == 64 * 65 // 2  # full causal: 2080 blocks against 127
