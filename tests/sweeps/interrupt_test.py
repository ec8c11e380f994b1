"""scripts/sweep.py stopped by SIGTERM mid-trial: one line naming how to resume (exit 130, no
traceback), the running trial checkpointed, and the same command finishes the sweep."""

from __future__ import annotations

import os
import signal
import subprocess

from tests.sweeps import executor_helpers as h


def test_sigterm_is_one_line_and_the_same_command_resumes(tmp_path):
  config, workdir = h.write_experiment(tmp_path), str(tmp_path / "sweep")
  args = ("--config", config, "--workdir", workdir, "--workers", "1")
  proc = subprocess.Popen(h.sweep_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
  h.wait_for_running_checkpoint(os.path.join(workdir, h.FIRST), proc)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 130, err[-2000:]
  assert "Traceback" not in err
  assert err.strip().splitlines()[-1].startswith("sweep: interrupted (signal 15)")
  assert "the same command resumes the sweep" in err

  resumed = h.run_sweep_cli(*args)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert {t: r["status"] for t, r in h.rows(workdir).items()} == {h.FIRST: "done", h.SECOND: "done"}
