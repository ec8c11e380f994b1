"""The Ray executor against a real Ray cluster on 127.0.0.1 and real training runs (tiny).

One cluster (``ray start --head``) serves the module; its sweep has two runs of the same training
under two names and a trial with a bad grid value. The worker of one run is killed mid-run.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from attnlab.sweeps import runner
from tests.sweeps import executor_helpers as h

pytest.importorskip("ray", reason="the 'ray' extra is not installed (pip install -e .[ray])")


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
  """``HOST:PORT`` of a two-CPU head node, stopped (by its pid) after the module."""
  port = _free_port()
  temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths live under it
  ray = os.path.join(os.path.dirname(sys.executable), "ray")
  proc = subprocess.Popen(
      [ray, "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
       "--include-dashboard=false", "--object-store-memory=80000000", f"--temp-dir={temp}",
       "--disable-usage-stats"],
      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
      env={**os.environ, "RAY_AUTH_MODE": "disabled"})  # no token file for the clients to find
  deadline = time.time() + 90
  try:
    while True:
      try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        break
      except OSError:
        if proc.poll() is not None or time.time() > deadline:
          pytest.fail(f"ray start did not come up: {proc.stderr.read()[-2000:]}")
        time.sleep(0.2)
    yield f"127.0.0.1:{port}"
  finally:
    proc.terminate()  # `ray start --block` stops the cluster's processes on SIGTERM
    try:
      proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
      os.killpg(proc.pid, signal.SIGKILL)  # the session it was started in
      proc.wait()
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
  return h.write_experiment(tmp_path_factory.mktemp("exp"))


@pytest.fixture(scope="module")
def swept(cluster, experiment, tmp_path_factory):
  """The sweep on the cluster, one trial at a time (2 CPUs each: the second run finds the first's
  compiled programs in the sweep's cache); the second run's worker is killed after its first
  checkpoint. Returns (workdir, completed process, the killed attempt's running record)."""
  workdir = str(tmp_path_factory.mktemp("ray") / "sweep")
  proc = subprocess.Popen(h.sweep_command(
      "--config", f"{experiment}:with_bad", "--workdir", workdir, "--executor", "ray",
      "--ray_address", cluster, "--ray_cpus_per_trial", "2", "--ray_max_retries", "2",
      "--nopreflight"),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  try:
    killed = h.wait_for_running_checkpoint(os.path.join(workdir, h.SECOND), proc)
    os.kill(killed["runner_pid"], signal.SIGKILL)  # the Ray worker running the task
    assert not os.path.exists(os.path.join(workdir, h.SECOND, "summary.json"))
    out, err = proc.communicate(timeout=300)
  finally:
    if proc.poll() is None:
      proc.kill()
  return workdir, subprocess.CompletedProcess(proc.args, proc.returncode, out, err), killed


def test_killed_worker_is_retried_and_a_bad_trial_fails_alone(swept):
  workdir, result, killed = swept
  assert result.returncode == 1, result.stderr[-3000:]  # the bad trial
  rows = h.rows(workdir)
  assert rows[h.FIRST]["status"] == "done" and rows[h.FIRST]["step"] == 80
  # The retried run resumed from its checkpoint and ended where the uninterrupted one did.
  assert h.compared(rows[h.SECOND]) == h.compared(rows[h.FIRST])
  assert "resumed from checkpoint step" in h.read(workdir, h.SECOND, "train.err")
  second = h.record(workdir, h.SECOND)
  assert second["executor"] == "ray" and second["resumed_from_step"] is not None
  job = runner.read_json(os.path.join(workdir, h.SECOND, runner.JOB_RECORD))
  assert second["submission"] == killed["submission"] == job["submission"]
  assert second["command"][-2:] == ["--workdir", os.path.join(workdir, h.SECOND)]
  bad = h.record(workdir, h.BAD)
  assert bad["returncode"] == 2 and bad["attempts"] == 1  # a bad config is not retried
  assert rows[h.BAD]["status"] == "failed" and "nope" in rows[h.BAD]["error"]
  assert f"{h.BAD}: failed (exit 2" in result.stdout
  # One compilation cache for the trials (the tests' own, tests/conftest.py): the second run,
  # after the first, compiled nothing.
  summary = runner.read_json(os.path.join(workdir, h.SECOND, "summary.json"))
  assert summary["compilations"] == 0 and summary["compile_cache_hits"] > 0


def test_status_and_other_executors_skip_what_ray_finished(swept, experiment):
  workdir, _, _ = swept
  status = h.run_sweep_cli("--workdir", workdir, "--status")
  assert status.returncode == 0, status.stderr[-2000:]
  lines = {line.split()[0]: line for line in status.stdout.splitlines() if line.strip()}
  assert lines[h.FIRST].split()[1] == "done" and lines[h.SECOND].split()[1] == "done"
  assert lines[h.BAD].split()[1] == "failed" and "model.name='nope'" in lines[h.BAD]
  assert "| model | accuracy (mean ± std) |" in status.stdout

  summary = os.path.join(workdir, h.FIRST, "summary.json")
  mtime = os.path.getmtime(summary)
  local = h.run_sweep_cli("--config", experiment, "--workdir", workdir, "--executor", "local")
  assert local.returncode == 0, local.stderr[-2000:]
  for name in (h.FIRST, h.SECOND):
    assert f"{name}: finished (done), skipped" in local.stdout

  # Ray again, on a local cluster this time: only the failed trial runs again.
  temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # the local cluster's session files
  try:
    again = h.run_sweep_cli("--config", f"{experiment}:with_bad", "--workdir", workdir,
                            "--executor", "ray", "--ray_num_cpus", "1", "--nopreflight",
                            env={"RAY_TMPDIR": temp})
  finally:
    shutil.rmtree(temp, ignore_errors=True)
  assert again.returncode == 1, again.stderr[-2000:]
  assert f"{h.BAD}: submitted to ray (1/1)" in again.stdout
  assert h.record(workdir, h.BAD)["attempts"] == 2
  assert os.path.getmtime(summary) == mtime
  assert h.rows(workdir)[h.FIRST]["status"] == "done"
