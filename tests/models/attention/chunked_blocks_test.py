"""Block plan of the memory-efficient attention: which key blocks each query block visits."""

from __future__ import annotations

from attnlab.models.attention import chunked_blocks as ab


def test_causal_skips_hidden_blocks():
  """Only blocks on or below the diagonal run; only the diagonal ones are masked."""
  p = ab.Plan(l=64, s=64, bq=8, nq=8, bk=8, nk=8, causal=True, has_mask=False, dropout_rate=0.0)
  ranges = [tuple(int(x) for x in ab.key_range(p, i)) for i in range(8)]
  assert ranges == [(i, i + 1) for i in range(8)]  # 36 of 64 blocks, 8 of them masked
  dense = ab.Plan(l=64, s=64, bq=8, nq=8, bk=8, nk=8, causal=False, has_mask=False,
                   dropout_rate=0.0)
  assert [tuple(int(x) for x in ab.key_range(dense, i)) for i in range(8)] == [(8, 8)] * 8
