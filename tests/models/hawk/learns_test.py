"""The registered ``hawk`` model trains through the common loop and learns associative recall."""

from __future__ import annotations

from tests.models.mamba.block_cases import train_recall


def test_learns_associative_recall(tmp_path):
  final = train_recall("hawk", str(tmp_path))
  # Two pairs, four values: chance is 0.25 (1.0 measured).
  assert final["lengths"]["8"]["accuracy"] >= 0.75
