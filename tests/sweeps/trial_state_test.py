"""A trial's state from its files (trial_state), and what every executor's attempt sets up (runner)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from attnlab.sweeps import runner, spec, trial_state


def _write(trial_dir, name, record):
  os.makedirs(trial_dir, exist_ok=True)
  with open(os.path.join(trial_dir, name), "w") as f:
    json.dump(record, f)


def _sleeper(trial_dir):
  """A process whose command line names the trial, as a training process's does."""
  return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "--workdir",
                           os.path.abspath(trial_dir)])


def test_states_from_the_files(tmp_path):
  d = str(tmp_path / "t")
  assert trial_state.read(d) == trial_state.TrialState("t", "pending", "not started")

  os.makedirs(os.path.join(d, "checkpoints", "10"))
  assert trial_state.read(d).detail == "interrupted; resumes from step 10"
  _write(d, runner.TRIAL_RECORD, {"status": "preempted", "executor": "ray", "ended": 100.0})
  assert trial_state.read(d).detail == "preempted (ray); resumes from step 10"

  _write(d, runner.TRIAL_RECORD, {"status": "failed", "executor": "slurm", "returncode": 1,
                                  "ended": 100.0, "stderr_tail": "Traceback\nOSError: disk\n"})
  failed = trial_state.read(d)
  assert (failed.state, failed.error) == ("failed", "OSError: disk")
  assert trial_state.status_lines([failed]) == ["t  failed   slurm, exit 1: OSError: disk"]
  _write(d, runner.JOB_RECORD, {"executor": "slurm", "job_id": "17_3", "submitted": 200.0})
  assert trial_state.read(d) == trial_state.TrialState(
      "t", "pending", "submitted to slurm as job 17_3; resumes from step 10")

  proc = _sleeper(d)
  try:
    _write(d, runner.RUNNING_RECORD, {"executor": "local", "host": socket.gethostname(),
                                      "pid": proc.pid, "started": time.time()})
    running = trial_state.read(d)
    assert running.state == "running" and f"pid {proc.pid}" in running.detail
  finally:
    proc.kill()
    proc.wait()
  assert trial_state.read(d).state == "pending"  # its process is gone: a stale record

  _write(d, runner.RUNNING_RECORD, {"executor": "ray", "host": "elsewhere", "pid": 1})
  assert trial_state.read(d).state == "running"  # another host's record, touched just now
  old = time.time() - trial_state.STALE_S - 1
  os.utime(os.path.join(d, runner.RUNNING_RECORD), (old, old))
  assert trial_state.read(d).state == "pending"

  _write(d, "summary.json", {"status": "nan", "step": 30})
  assert trial_state.read(d) == trial_state.TrialState("t", "done", "nan at step 30")


def test_to_start_skips_finished_and_running(tmp_path):
  trials = spec.make_trials([{"seed": 0}, {"seed": 1}, {"seed": 2}])
  _write(str(tmp_path / "seed0"), "summary.json", {"status": "done"})
  proc = _sleeper(tmp_path / "seed1")
  try:
    _write(str(tmp_path / "seed1"), runner.RUNNING_RECORD,
           {"executor": "slurm", "host": socket.gethostname(), "pid": proc.pid, "job_id": "5"})
    logs = []
    assert [t.name for t in trial_state.to_start(trials, str(tmp_path), logs.append)] == ["seed2"]
  finally:
    proc.kill()
    proc.wait()
  assert logs[0] == "[sweep] seed0: finished (done), skipped"
  assert logs[1].startswith(f"[sweep] seed1: running (slurm job 5, pid {proc.pid} on ")


def test_trial_env_shares_the_sweep_cache_unless_one_is_set(tmp_path):
  workdir = str(tmp_path)
  cache = os.path.join(workdir, runner.CACHE_DIR)
  assert runner.trial_env(workdir, base={"A": "1"}) == {"A": "1", runner.CACHE_ENV: cache}
  assert runner.trial_env(workdir, {"B": "2"}, base={})[runner.CACHE_ENV] == cache
  assert runner.trial_env(workdir, base={runner.CACHE_ENV: ""})[runner.CACHE_ENV] == ""  # off
  assert runner.trial_env(workdir, {runner.CACHE_ENV: "/c"}, base={})[runner.CACHE_ENV] == "/c"
  from attnlab.train import compilation  # pylint: disable=import-outside-toplevel
  assert runner.CACHE_ENV == compilation.ENV


def _alive(pid):
  """Running, not a zombie waiting for whoever adopted it to reap it."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rsplit(")", 1)[1].split()[0] != "Z"
  except OSError:
    return False


WORKER = textwrap.dedent("""
    import sys, time
    from attnlab.sweeps import runner, spec
    trial = spec.Trial("t", {})
    attempt = runner.start_attempt(trial, config="unused.py", workdir=sys.argv[1],
                                   train_command=[sys.executable, "-c",
                                                  "import time; time.sleep(60)"],
                                   executor="ray", die_with_parent=True)
    time.sleep(60)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_trial_ignores_sigusr2_and_dies_with_its_worker(tmp_path):
  worker = subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path)])
  running_path = tmp_path / "t" / runner.RUNNING_RECORD
  deadline = time.time() + 60
  while not running_path.exists() and time.time() < deadline:
    time.sleep(0.05)
  record = runner.read_json(str(running_path))
  assert record["runner_pid"] == worker.pid and record["executor"] == "ray"
  child = record["pid"]
  os.kill(child, signal.SIGUSR2)  # SLURM signals every process of a job; the worker handles it
  time.sleep(0.3)
  assert _alive(child)
  worker.kill()
  worker.wait()
  deadline = time.time() + 10
  while time.time() < deadline and _alive(child):
    time.sleep(0.05)
  if _alive(child):
    os.kill(child, signal.SIGKILL)
    pytest.fail("the trial outlived its worker")
