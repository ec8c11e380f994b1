"""The SLURM executor: every trial a submitit job (one job array per sweep run), requeued from its
checkpoints when SLURM signals a time limit or a preemption.

A job runs ``SlurmTrial``: the trial's ``runner.start_attempt``, as the local executor runs it. SLURM
sends SIGUSR2 ``signal_delay_s`` before the time limit (and submitit's preemption signal is the
same); submitit then calls ``SlurmTrial.checkpoint``, which stops the training process with SIGTERM
(the loop saves a checkpoint and exits "preempted"), and requeues the job, whose next run resumes
the trial from that checkpoint. Job scripts, pickles and submitit's own logs go to
``WORKDIR/slurm/`` (``JOB_ID_submission.sh``, ``JOB_ID_0_log.err``...); the trial's output stays
in ``TRIAL/train.out`` and ``train.err``.
``cluster="local"`` submits through submitit's LocalExecutor instead: the same submission code,
job pickles, log files and requeue on SIGUSR2, on this machine without SLURM.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import time
from typing import Any, Callable, Mapping, Sequence

from attnlab.sweeps import runner, spec

CLUSTERS = ("slurm", "local")
# sbatch options that have typed fields here; --slurm_extra may not set them behind their backs.
_TYPED = {"partition": "--slurm_partition", "time": "--slurm_time",
          "gpus": "--slurm_gpus_per_trial", "gpus-per-node": "--slurm_gpus_per_trial",
          "cpus-per-task": "--slurm_cpus_per_trial", "mem": "--slurm_mem_gb",
          "array": "--slurm_array_parallelism", "signal": "--slurm_signal_delay_s",
          "output": "nothing: the executor sets it", "error": "nothing: the executor sets it"}
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def _positive_int(name: str, value: Any, minimum: int = 1) -> None:
  if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
    raise ValueError(f"{name}={value!r}; must be an integer >= {minimum}")


@dataclasses.dataclass(frozen=True)
class SlurmOptions:
  """What each trial's job asks SLURM for. Field errors name the command's flags."""

  partition: str | None = None  # --partition; None: the cluster's default
  time_min: int = 240  # --time of one job, minutes; a longer trial is requeued from checkpoints
  gpus_per_trial: int = 0  # --gpus-per-node
  cpus_per_trial: int = 4  # --cpus-per-task
  mem_gb: float | None = None  # --mem; None: the cluster's default
  array_parallelism: int = 256  # trials of the array running at once
  extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # more #SBATCH options
  max_timeouts: int = 3  # time-limit requeues per trial (preemptions are not counted)
  signal_delay_s: int = 120  # SIGUSR2 this long before the time limit: the final checkpoint
  cluster: str = "slurm"  # "local": submitit's LocalExecutor on this machine

  def __post_init__(self):
    if self.partition is not None and (not isinstance(self.partition, str) or not self.partition):
      raise ValueError(f"slurm_partition={self.partition!r}; must be a partition name")
    _positive_int("slurm_time", self.time_min)
    _positive_int("slurm_gpus_per_trial", self.gpus_per_trial, 0)
    _positive_int("slurm_cpus_per_trial", self.cpus_per_trial)
    if self.mem_gb is not None and (isinstance(self.mem_gb, bool)
                                    or not isinstance(self.mem_gb, (int, float))
                                    or not self.mem_gb > 0):
      raise ValueError(f"slurm_mem_gb={self.mem_gb!r}; must be a positive number of GB")
    _positive_int("slurm_array_parallelism", self.array_parallelism)
    _positive_int("slurm_max_timeouts", self.max_timeouts, 0)
    _positive_int("slurm_signal_delay_s", self.signal_delay_s)
    if self.signal_delay_s >= 60 * self.time_min:
      raise ValueError(f"slurm_signal_delay_s={self.signal_delay_s}; must be shorter than "
                       f"slurm_time={self.time_min} minutes")
    if self.cluster not in CLUSTERS:
      raise ValueError(f"slurm_cluster={self.cluster!r}; must be one of {list(CLUSTERS)}")
    if not isinstance(self.extra, Mapping):
      raise ValueError(f"slurm_extra={self.extra!r}; must map sbatch option names to values")
    for key, value in self.extra.items():
      if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(f"slurm_extra key {key!r}; must be an sbatch option name such as "
                         "'constraint' or 'qos'")
      if key.replace("_", "-") in _TYPED:
        raise ValueError(f"slurm_extra sets {key!r}; use {_TYPED[key.replace('_', '-')]}")
      if not isinstance(value, (str, int, float, bool)):
        raise ValueError(f"slurm_extra {key}={value!r}; must be a string or a number")


def parse_extra(items: Sequence[str]) -> dict[str, Any]:
  """``["constraint=volta", "exclusive"]`` -> ``{"constraint": "volta", "exclusive": True}``
  (an option given alone is an ``#SBATCH --option`` without a value)."""
  out: dict[str, Any] = {}
  for item in items:
    key, sep, value = item.partition("=")
    key = key.strip().lstrip("-")
    if not key or (sep and not value):
      raise ValueError(f"slurm_extra={item!r}; must be KEY=VALUE (an sbatch option, e.g. "
                       "constraint=volta) or KEY alone for an option without a value")
    out[key] = value if sep else True
  return out


def require():
  """The submitit module; ValueError naming the extra when it is not installed."""
  try:
    import submitit  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ValueError("--executor slurm needs the 'slurm' extra (submitit): "
                     f"pip install -e .[slurm] ({e})") from None
  return submitit


class SlurmTrial:
  """A submitit job function: one attempt of a trial; on SLURM's checkpoint signal it stops the
  trial at a checkpoint and hands submitit a copy of itself to requeue."""

  def __init__(self, trial: spec.Trial, config: str, workdir: str,
               train_command: Sequence[str] | None, env: Mapping[str, str] | None,
               grace_s: float):
    self.trial, self.config, self.workdir = trial, config, workdir
    self.train_command = list(train_command) if train_command else None
    self.env, self.grace_s = dict(env or {}), grace_s
    self._attempt: runner.Attempt | None = None

  def _fresh(self) -> "SlurmTrial":
    return SlurmTrial(self.trial, self.config, self.workdir, self.train_command, self.env,
                      self.grace_s)

  def __call__(self) -> dict:
    self._attempt = runner.start_attempt(self.trial, config=self.config, workdir=self.workdir,
                                         train_command=self.train_command, env=self.env,
                                         executor="slurm", die_with_parent=True)
    with self._attempt:
      return self._attempt.wait()

  def checkpoint(self):
    """Called by submitit in the job on SIGUSR2 (time limit or preemption)."""
    if self._attempt is not None:
      self._attempt.stop(self.grace_s)  # at a checkpoint; its record says "preempted"
    return require().helpers.DelayedSubmission(self._fresh())

  def __getstate__(self):
    return {**self.__dict__, "_attempt": None}


def _queued(record: Mapping) -> str | None:
  """The SLURM state of the trial's last job while it is still queued or running, via squeue."""
  if record.get("executor") != "slurm" or record.get("cluster") != "slurm" \
      or not record.get("job_id") or shutil.which("squeue") is None:
    return None
  try:
    out = subprocess.run(["squeue", "-h", "-j", str(record["job_id"]), "-o", "%T"],
                         capture_output=True, text=True, timeout=30).stdout.split()
  except (OSError, subprocess.SubprocessError):
    return None
  return out[0] if out else None


def _executor(options: SlurmOptions, workdir: str):
  submitit = require()
  folder = os.path.join(os.path.abspath(workdir), "slurm")
  executor = submitit.AutoExecutor(folder=folder, cluster=options.cluster,
                                   slurm_max_num_timeout=options.max_timeouts,
                                   local_max_num_timeout=options.max_timeouts)
  params: dict[str, Any] = dict(
      name=f"sweep-{os.path.basename(os.path.normpath(workdir))}",
      timeout_min=options.time_min, cpus_per_task=options.cpus_per_trial,
      gpus_per_node=options.gpus_per_trial, slurm_array_parallelism=options.array_parallelism,
      slurm_signal_delay_s=options.signal_delay_s)
  if options.mem_gb is not None:
    params["mem_gb"] = float(options.mem_gb)
  if options.partition:
    params["slurm_partition"] = options.partition
  if options.extra:
    params["slurm_additional_parameters"] = dict(options.extra)
  executor.update_parameters(**params)
  return executor


def _error_line(error: BaseException) -> str:
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  return lines[-1] if lines else type(error).__name__


def _outcome(job, trial: spec.Trial, trial_dir: str) -> dict:
  """The trial record of the attempt the job ran; written here if the job died without one."""
  record = runner.read_json(os.path.join(trial_dir, runner.TRIAL_RECORD))
  if record and record.get("job_id") == str(job.job_id):
    return record
  try:
    job.result()
    message = "the job ended without a trial record"
  except Exception as e:  # pylint: disable=broad-except
    message = _error_line(e)
  return runner.record_failure(trial_dir, trial, "slurm", f"slurm job {job.job_id}: {message}")


def run_trials(trials: Sequence[spec.Trial], *, config: str, workdir: str,
               options: SlurmOptions, train_command: Sequence[str] | None = None,
               env: Mapping[str, str] | None = None, log: Callable[[str], None] = print,
               poll_s: float = 2.0, on_end: Callable[[str], None] | None = None
               ) -> dict[str, dict]:
  """Submits ``trials`` as one job array and waits for the jobs; returns the trials' records
  (``on_end(name)`` is called as each job ends).

  ``env`` is added to the job's environment (sbatch passes it the submitting shell's). A trial
  whose last job is still queued or running is not submitted again. Interrupting the sweep
  leaves the jobs running; the same command later skips what they finished.
  """
  todo = []
  for trial in trials:
    job_record = runner.read_json(os.path.join(workdir, trial.name, runner.JOB_RECORD)) or {}
    state = _queued(job_record)
    if state:
      log(f"[sweep] {trial.name}: slurm job {job_record['job_id']} is {state}, "
          "not submitted again")
    else:
      todo.append(trial)
  if not todo:
    return {}
  executor = _executor(options, workdir)
  grace = max(10.0, options.signal_delay_s - 30.0)
  with executor.batch():
    jobs = [executor.submit(SlurmTrial(t, config, workdir, train_command, env, grace))
            for t in todo]
  submitted = time.time()
  waiting = {}
  for trial, job in zip(todo, jobs):
    trial_dir = os.path.join(workdir, trial.name)
    os.makedirs(trial_dir, exist_ok=True)
    runner.write_json(os.path.join(trial_dir, runner.JOB_RECORD), {
        "executor": "slurm", "cluster": options.cluster, "job_id": str(job.job_id),
        "submitted": submitted, "folder": str(job.paths.folder),
        "stdout": str(job.paths.stdout), "stderr": str(job.paths.stderr)})
    log(f"[sweep] {trial.name}: submitted as {options.cluster} job {job.job_id}")
    waiting[trial.name] = (trial, job, trial_dir)
  records = {}
  try:
    while waiting:
      time.sleep(poll_s)
      for name, (trial, job, trial_dir) in list(waiting.items()):
        if job.done():
          records[name] = _outcome(job, trial, trial_dir)
          del waiting[name]
          log(runner.outcome_line(name, records[name]))
          if on_end is not None:
            on_end(name)
  except KeyboardInterrupt:
    log(f"[sweep] interrupted: {len(waiting)} {options.cluster} job(s) keep running; the same "
        "command later skips what they finished and does not resubmit them (see --status)")
    raise
  return records
