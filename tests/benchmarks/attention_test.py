"""The attention benchmark's merging of rounds (no timing is asserted)."""

from __future__ import annotations

import argparse

from benchmarks import attention

_OPTS = argparse.Namespace(batch=4, heads=8, head_dim=64)
_IDLE = {"jax": 300.0, "torch": 250.0}


def _round(median_s, rss_mb, cpu_s=1.0):
  return {"median_s": median_s, "cpu_s": cpu_s, "times": [median_s], "rss_mb": rss_mb,
          "status": "ok"}


def test_merge_takes_medians_over_rounds_and_the_largest_peak():
  rec = attention.merge([_round(3.0, 700), _round(1.0, 800), _round(2.0, 650)], 4096, True,
                         "default", _OPTS, _IDLE)
  assert rec["median_s"] == 2.0 and rec["round_medians"] == [3.0, 1.0, 2.0]
  assert rec["peak_mb"] == 800 - 300 and rec["status"] == "ok" and rec["rounds"] == 3
  torch_rec = attention.merge([_round(1.0, 400)], 4096, True, "torch", _OPTS, _IDLE)
  assert torch_rec["peak_mb"] == 400 - 250


def test_merge_reports_a_failed_round_instead_of_a_time():
  rec = attention.merge([_round(3.0, 700), {"status": "timeout"}], 16384, False, "naive", _OPTS,
                         _IDLE)
  assert rec["status"] == "timeout" and "median_s" not in rec
