"""The SLURM executor through submitit and real training runs (tiny).

First through submitit's local executor (the same submission code: pickled jobs, their log files,
requeue on SIGUSR2), then, where Debian's SLURM is installed, through ``sbatch`` on a private
single-node cluster (tests/sweeps/slurm_cluster.py). Each sweep has two runs of the same training
under two names; one is sent SLURM's checkpoint signal mid-run, requeued, and must end where the
other did.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile

import pytest

from attnlab.sweeps import runner
from tests.sweeps import executor_helpers as h
from tests.sweeps import slurm_cluster

pytest.importorskip("submitit", reason="the 'slurm' extra is not installed (pip install -e .[slurm])")


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
  return h.write_experiment(tmp_path_factory.mktemp("exp"))


def _sweep_interrupting_second(args, workdir, interrupt, env=None):
  """Runs the sweep command; ``interrupt(running_record)`` once the second run has a checkpoint."""
  proc = subprocess.Popen(h.sweep_command(*args, "--workdir", workdir), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True,
                          env=None if env is None else {**os.environ, **env})
  try:
    interrupted = h.wait_for_running_checkpoint(os.path.join(workdir, h.SECOND), proc)
    interrupt(interrupted)
    out, err = proc.communicate(timeout=300)
  finally:
    if proc.poll() is None:
      proc.kill()
  return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), interrupted


@pytest.fixture(scope="module")
def local_sweep(experiment, tmp_path_factory):
  """The sweep through submitit's local executor; SIGUSR2, what SLURM sends before a time limit,
  goes to the second run's job process after its first checkpoint."""
  workdir = str(tmp_path_factory.mktemp("slurm_local") / "sweep")
  result, interrupted = _sweep_interrupting_second(
      ("--config", experiment, "--executor", "slurm", "--slurm_cluster", "local",
       "--slurm_time", "10", "--slurm_cpus_per_trial", "1"), workdir,
      lambda record: os.kill(record["runner_pid"], signal.SIGUSR2))
  return workdir, result, interrupted


def test_local_submitit_requeues_on_the_checkpoint_signal(local_sweep):
  workdir, result, interrupted = local_sweep
  assert result.returncode == 0, result.stderr[-3000:]
  rows = h.rows(workdir)
  assert rows[h.FIRST]["status"] == "done" and rows[h.FIRST]["step"] == 80
  assert h.compared(rows[h.SECOND]) == h.compared(rows[h.FIRST])
  assert "resumed from checkpoint step" in h.read(workdir, h.SECOND, "train.err")
  second = h.record(workdir, h.SECOND)
  # Two attempts in one job: stopped at a checkpoint ("preempted"), then requeued to the end.
  assert second["attempts"] == 2 and second["executor"] == "slurm"
  assert second["resumed_from_step"] >= 5
  job = runner.read_json(os.path.join(workdir, h.SECOND, runner.JOB_RECORD))
  assert job["cluster"] == "local" and job["job_id"] == interrupted["job_id"] == second["job_id"]
  # submitit's own files for the job: the pickled function, its log, the result.
  assert os.path.exists(os.path.join(job["folder"], f"{job['job_id']}_submitted.pkl"))
  assert os.path.exists(os.path.join(job["folder"], f"{job['job_id']}_0_result.pkl"))
  with open(job["stderr"]) as f:  # submitit's warnings
    assert "Caught signal SIGUSR2" in f.read()
  with open(job["stdout"]) as f:  # and its info lines
    log = f.read()
  assert "Calling checkpoint method" in log and f"Requeued job {job['job_id']}" in log


@pytest.fixture(scope="module")
def slurm():
  root = tempfile.mkdtemp(prefix="slurm", dir="/tmp")
  try:
    cluster = slurm_cluster.start(root)
  except slurm_cluster.Unavailable as e:
    shutil.rmtree(root, ignore_errors=True)
    pytest.skip(f"no SLURM here: {e}")
  try:
    yield cluster
  finally:
    cluster.stop()
    shutil.rmtree(root, ignore_errors=True)


def test_sbatch_trial_requeued_by_slurm_after_a_local_run(slurm, experiment, local_sweep,
                                                           tmp_path):
  """Real SLURM: the first run, finished by the local executor's sweep, is skipped; the second is
  an sbatch job that SLURM signals (``scancel --signal USR2``), requeues and restarts."""
  workdir = str(tmp_path / "sweep")
  os.makedirs(workdir)
  shutil.copytree(os.path.join(local_sweep[0], h.FIRST), os.path.join(workdir, h.FIRST))
  env = dict(slurm.env)

  def usr2(record):
    subprocess.run(["scancel", "--signal", "USR2", str(record["job_id"])], check=True,
                   env={**os.environ, **env}, timeout=30)

  result, interrupted = _sweep_interrupting_second(
      ("--config", experiment, "--executor", "slurm", "--slurm_partition",
       slurm_cluster.PARTITION, "--slurm_time", "5", "--slurm_cpus_per_trial", "1",
       "--slurm_extra", "comment=attnlab-test"), workdir, usr2, env)
  assert result.returncode == 0, result.stderr[-3000:]
  assert f"{h.FIRST}: finished (done), skipped" in result.stdout
  rows, reference = h.rows(workdir), h.rows(local_sweep[0])
  assert h.compared(rows[h.SECOND]) == h.compared(reference[h.SECOND])
  second = h.record(workdir, h.SECOND)
  assert second["attempts"] == 2 and second["resumed_from_step"] >= 5
  job = runner.read_json(os.path.join(workdir, h.SECOND, runner.JOB_RECORD))
  assert job["cluster"] == "slurm" and job["job_id"] == interrupted["job_id"] == second["job_id"]
  script = glob.glob(os.path.join(job["folder"], "*_submission.sh"))
  with open(script[0]) as f:
    sbatch = f.read()
  for line in (f"#SBATCH --partition={slurm_cluster.PARTITION}", "#SBATCH --time=5",
               "#SBATCH --cpus-per-task=1", "#SBATCH --comment=attnlab-test",
               "#SBATCH --signal=USR2@120"):
    assert line in sbatch
  with open(job["stderr"]) as f:
    assert "Caught signal SIGUSR2" in f.read()
