"""The registered ``mamba`` model trains through the common loop and learns associative recall."""

from __future__ import annotations

from tests.models.mamba.block_cases import train_recall


def test_learns_associative_recall(tmp_path):
  final = train_recall("mamba", str(tmp_path))
  # Two pairs, four values: chance is 0.25 (0.95 measured).
  assert final["lengths"]["8"]["accuracy"] >= 0.75
