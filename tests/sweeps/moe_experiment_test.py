"""experiments/moe.py:smoke runs end to end: a dense and an MoE decoder trained by scripts/sweep.py,
at equal active parameters (the MoE's extra parameters are its other experts)."""

from __future__ import annotations

import os
import subprocess
import sys

from attnlab.sweeps import results

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_moe_smoke_sweep(tmp_path):
  workdir = tmp_path / "moe"
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "sweep.py"),
                         f"--config={ROOT}/experiments/moe.py:smoke", f"--workdir={workdir}",
                         "--workers=2"], capture_output=True, text=True, timeout=600,
                        env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = {r["model.moe_experts"]: r for r in results.read_csv(str(workdir / "results.csv"))}
  assert set(rows) == {0, 2} and all(r["status"] == "done" for r in rows.values())
  dense, moe = rows[0], rows[2]
  # One more expert feed-forward (wi, bi, wo, bo of width d_ff) and a router per layer.
  d, f, layers = 16, 64, 2
  assert moe["param_count"] - dense["param_count"] == layers * (2 * d * f + f + d + d * 2)
  assert dense["tokens_per_s"] > 0 and moe["tokens_per_s"] > 0
