"""device_check.sh's records: exit statuses, pytest's closing line, a cut-off section, the table."""

from __future__ import annotations

import json

import pytest

from benchmarks import device_report


@pytest.mark.parametrize("rc, status", [(0, "ok"), (124, "timeout"), (137, "timeout"),
                                        (1, "failed (exit 1)")])
def test_status_of_exit_code(rc, status):
  assert device_report.status_of(rc) == status


def test_pytest_counts_read_the_closing_line():
  log = "F.s\nFAILED tests/x_test.py::test_a - 1 failed here\n2 failed, 5 passed, 1 skipped, " \
        "3 deselected, 1 error in 9.1s\n"
  assert device_report.pytest_counts(log) == {"failed": 2, "passed": 5, "skipped": 1,
                                              "deselected": 3, "errors": 1}
  assert device_report.pytest_counts("collected nothing\n") == {}


def _record(out, section, rc, log, data=None):
  log.write_text("\n".join(f"line {i}" for i in range(100)))
  argv = ["record", "--out", str(out), "--section", section, "--rc", str(rc), "--seconds", "12.5",
          "--timeout", "60", "--log", str(log), "--command", "python x"]
  device_report.main(argv + (["--data", str(data)] if data else []))
  return json.loads((out / f"{section}.json").read_text())


def test_a_cut_off_section_is_recorded_with_its_log_and_the_table_keeps_the_order(tmp_path):
  out = tmp_path / "out"
  rec = _record(out, "attention", 124, tmp_path / "a.log", tmp_path / "never_written.json")
  assert rec["status"] == "timeout" and rec["data"] is None and rec["seconds"] == 12.5
  assert rec["log_tail"][-1] == "line 99" and len(rec["log_tail"]) == device_report.LOG_TAIL
  records = [{"impl": "mamba", "length": 1024, "status": "ok", "median_s": 0.002,
              "device_mb": 2048.0, "vs_softmax": 0.5},
             {"impl": "softmax", "length": 16384, "status": "oom"}]
  (tmp_path / "lc.json").write_text(json.dumps(records))
  _record(out, "long_context", 0, tmp_path / "b.log", tmp_path / "lc.json")
  _record(out, "setup", 0, tmp_path / "c.log")
  table = (out / "summary.md").read_text().splitlines()
  rows = [line.split(" | ")[0] for line in table if line.startswith("| ") and " | " in line]
  assert rows[:4] == ["| section", "| setup", "| attention", "| long_context"]
  assert "| attention | timeout | 12.5 of 60 | - |" in table
  assert "| mamba | 2 ms (0.50x), 2 GB | - |" in table  # L=1024, then L=16384
  assert "| softmax | - | oom |" in table


def test_mqar_result_keeps_the_evaluations_of_a_cut_off_run(tmp_path):
  evals = [{"step": s, "lengths": {"128": {"accuracy": a, "loss": 1.0}}}
           for s, a in ((500, 0.2), (1000, 0.9))]
  (tmp_path / "eval.jsonl").write_text("\n".join(json.dumps(e) for e in evals) + "\n")
  result = device_report.mqar_result(str(tmp_path))
  assert result == {"evals": [{"step": 500, "accuracy_128": 0.2},
                              {"step": 1000, "accuracy_128": 0.9}]}
  rec = {"section": "mqar", "data": result}
  assert device_report.headline(rec) == "step 1000: accuracy_128 0.9"
