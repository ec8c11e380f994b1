"""scripts/device_check.sh --dry_run: every section runs at tiny sizes on this CPU and leaves the
files a device call brings back (at most 8), in the format the GPU run writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from benchmarks import device_report

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEYS = {"section", "status", "rc", "seconds", "timeout_s", "dry_run", "command", "data",
        "log_tail"}


def _check(*args):
  return subprocess.run(["bash", os.path.join(ROOT, "scripts", "device_check.sh"), *args],
                        capture_output=True, text=True, env={**os.environ, "PYTHON": sys.executable},
                        timeout=1500)


@pytest.mark.slow
def test_dry_run_writes_every_section_and_the_table(tmp_path):
  out = tmp_path / "out"
  proc = _check("--dry_run", str(out))
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  names = sorted(os.listdir(out))
  assert names == sorted([f"{s}.json" for s in device_report.SECTIONS] + ["summary.md"])
  recs = {s: json.loads((out / f"{s}.json").read_text()) for s in device_report.SECTIONS}
  for section, rec in recs.items():
    assert set(rec) == KEYS and rec["section"] == section and rec["dry_run"] is True
    assert rec["status"] == "ok", (section, rec["log_tail"])
    assert rec["data"], section
  assert recs["setup"]["data"]["backend"] == "cpu" and recs["setup"]["data"]["devices"]
  assert recs["tests"]["data"]["passed"] >= 1 and "failed" not in recs["tests"]["data"]
  attention = {r["impl"]: r for r in recs["attention"]["data"]}
  assert attention["cudnn"]["status"].startswith("skipped: needs a GPU")
  assert attention["xla"]["status"] == "ok" and attention["xla"]["dtype"] == "bfloat16"
  assert {r["impl"] for r in recs["long_context"]["data"]} == {"softmax", "gla"}
  mfu = recs["mfu"]["data"][0]
  assert mfu["mfu"] == "unknown" and mfu["peak_tflops"] == "unknown" and mfu["model_tflops"] > 0
  assert recs["mqar"]["data"]["status"] == "done" and recs["mqar"]["data"]["evals"]
  table = (out / "summary.md").read_text()
  assert table.startswith("# device_check (dry run")
  assert "| section | status | seconds | result |" in table
  for section in device_report.SECTIONS:
    assert f"| {section} | ok | " in table


def test_usage_without_an_output_folder():
  proc = _check()
  assert proc.returncode == 2 and "usage: bash scripts/device_check.sh [--dry_run] OUT" in proc.stderr
