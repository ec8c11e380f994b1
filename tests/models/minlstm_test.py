"""MinLSTM: every mode equals the paper's equations run step by step, forward and backward
(the shared GatedScan tests of gated_scan_cases.py, run for MinLSTM)."""

from __future__ import annotations

from attnlab.models.minlstm import MinLSTM
from tests.models.gated_scan_cases import *  # noqa: F401,F403
from tests.models.gated_scan_cases import H, sigmoid

LAYER = MinLSTM


def reference_gates(k):
  """minLSTM: a = f' = f / (f + i), w = i' = i / (f + i)."""
  f, i = sigmoid(k[..., :H]), sigmoid(k[..., H:2 * H])
  return f / (f + i), i / (f + i)
