"""MinGRU: every mode equals the paper's equations run step by step, forward and backward
(the shared GatedScan tests of gated_scan_cases.py, run for MinGRU)."""

from __future__ import annotations

from attnlab.models.scan.mingru import MinGRU
from tests.models.scan.gated_scan_cases import *  # noqa: F401,F403
from tests.models.scan.gated_scan_cases import H, sigmoid

LAYER = MinGRU


def reference_gates(k):
  """minGRU: a = 1 - z, w = z, z = sigmoid(k_z)."""
  z = sigmoid(k[..., :H])
  return 1 - z, z
