"""Bad input to the executors: one clear line, exit 2, nothing run or written."""

from __future__ import annotations

import os
import socket
import time

import pytest

from attnlab.sweeps import ray_executor, slurm_executor, sweep
from tests.sweeps import executor_helpers as h


@pytest.fixture()
def experiment(tmp_path):
  return h.write_experiment(tmp_path)


def _error(result) -> str:
  """The one stderr line of a refused command."""
  assert result.returncode == 2, (result.stdout[-2000:], result.stderr[-2000:])
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("sweep: error: "), result.stderr[-2000:]
  return lines[0]


@pytest.mark.parametrize("flags, message", [
    (["--executor", "condor"], "--executor=condor: value should be one of <local|slurm|ray>"),
    (["--executor", "slurm", "--slurm_time", "4h"], "--slurm_time=4h: invalid literal for int()"),
    (["--executor", "slurm", "--slurm_mem_gb", "-8"], "slurm_mem_gb=-8.0; must be a positive"),
    (["--executor", "slurm", "--slurm_gpus_per_trial", "1.5"], "--slurm_gpus_per_trial=1.5"),
    (["--executor", "slurm", "--slurm_extra", "time=60"], "slurm_extra sets 'time'; use "
                                                          "--slurm_time"),
    (["--executor", "slurm", "--slurm_extra", "qos="], "slurm_extra='qos='; must be KEY=VALUE"),
    (["--slurm_partition", "gpu"], "--slurm_partition need --executor slurm (got --executor "
                                   "local)"),
    (["--executor", "ray", "--workers", "2"], "--workers is the local executor's"),
])
def test_bad_flags(experiment, tmp_path, flags, message):
  workdir = tmp_path / "sweep"
  line = _error(h.run_sweep_cli("--config", experiment, "--workdir", str(workdir), *flags))
  assert message in line
  assert not workdir.exists()


@pytest.mark.parametrize("executor, extra", [("ray", "ray"), ("slurm", "slurm")])
def test_missing_extra_is_named(experiment, tmp_path, executor, extra):
  module = {"ray": "ray", "slurm": "submitit"}[executor]
  stub = tmp_path / "stub" / module
  stub.mkdir(parents=True)
  (stub / "__init__.py").write_text(f"raise ImportError('No module named {module}')\n")
  workdir = tmp_path / "sweep"
  line = _error(h.run_sweep_cli("--config", experiment, "--workdir", str(workdir),
                                "--executor", executor, env={"PYTHONPATH": str(stub.parent)}))
  assert f"--executor {executor} needs the '{extra}' extra" in line
  assert f"pip install -e .[{extra}]" in line
  assert not workdir.exists()


def test_ray_address_that_does_not_answer(experiment, tmp_path):
  pytest.importorskip("ray", reason="the 'ray' extra is not installed")
  # A listening socket whose accept queue is full: the connection hangs unanswered.
  server = socket.socket()
  server.bind(("127.0.0.1", 0))
  server.listen(0)
  port = server.getsockname()[1]
  fillers = []
  for _ in range(4):
    filler = socket.socket()
    filler.setblocking(False)
    filler.connect_ex(("127.0.0.1", port))
    fillers.append(filler)
  try:
    start = time.time()
    line = _error(h.run_sweep_cli("--config", experiment, "--workdir", str(tmp_path / "w"),
                                  "--executor", "ray", "--ray_address", f"127.0.0.1:{port}",
                                  "--ray_connect_timeout_s", "2", timeout=60))
    assert time.time() - start < 30
  finally:
    for s in fillers + [server]:
      s.close()
  assert f"ray_address='127.0.0.1:{port}' does not answer within 2s" in line
  assert not (tmp_path / "w").exists()


def test_options_checked_before_anything_runs(experiment, tmp_path):
  with pytest.raises(ValueError, match="slurm_time='10'; must be an integer >= 1"):
    slurm_executor.SlurmOptions(time_min="10")
  with pytest.raises(ValueError, match="slurm_max_timeouts=-1"):
    slurm_executor.SlurmOptions(max_timeouts=-1)
  with pytest.raises(ValueError, match="slurm_signal_delay_s=120; must be shorter"):
    slurm_executor.SlurmOptions(time_min=2)
  with pytest.raises(ValueError, match="slurm_cluster='pbs'"):
    slurm_executor.SlurmOptions(cluster="pbs")
  with pytest.raises(ValueError, match="slurm_extra key '--qos'"):
    slurm_executor.SlurmOptions(extra={"--qos": "high"})
  with pytest.raises(ValueError, match=r"slurm_extra nodes=\[1\]"):
    slurm_executor.SlurmOptions(extra={"nodes": [1]})
  assert slurm_executor.parse_extra(["constraint=volta", "--exclusive", "comment=a=b"]) == {
      "constraint": "volta", "exclusive": True, "comment": "a=b"}
  with pytest.raises(ValueError, match="ray_address='head'; must be HOST:PORT"):
    ray_executor.RayOptions(address="head")
  with pytest.raises(ValueError, match="ray_max_retries=1.5; must be an integer"):
    ray_executor.RayOptions(max_retries=1.5)
  with pytest.raises(ValueError, match="ray_num_cpus sizes a local cluster"):
    ray_executor.RayOptions(address="head:6379", num_cpus=2)
  assert ray_executor.RayOptions(address="ray://head:10001").address == "ray://head:10001"
  workdir = str(tmp_path / "sweep")
  with pytest.raises(ValueError, match=r"executor='mpi'; must be one of \['local', 'slurm'"):
    sweep.run_sweep(experiment, workdir, executor="mpi")
  with pytest.raises(ValueError, match="SLURM options given with executor='ray'"):
    sweep.run_sweep(experiment, workdir, executor="ray", slurm=slurm_executor.SlurmOptions())
  assert not os.path.exists(workdir)


def test_status_needs_a_sweep(tmp_path):
  line = _error(h.run_sweep_cli("--workdir", str(tmp_path), "--status"))
  assert "no sweep in workdir=" in line and "(no sweep.json)" in line
  line = _error(h.run_sweep_cli("--workdir", str(tmp_path)))
  assert "--config is required" in line
