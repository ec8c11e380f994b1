"""The Ray executor: every trial a Ray task with its resources, retried a bounded number of times.

The task (``run_trial``, in a Ray worker on any node) runs the trial's ``runner.start_attempt``,
as the local executor does; the training process dies with its worker, so a retry never meets an
orphan writing the same directory, and resumes from the trial's last checkpoint. Ray retries a
task whose worker died, and one whose trial ended unfinished for a reason a retry can fix
(``TrialInterrupted``: killed, preempted, crashed); a bad config (``scripts/train.py`` exit 2)
fails at once. ``address`` names a running cluster (``ray start --head`` prints it); without one a
local cluster is started for the sweep and stopped after it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
import uuid
from typing import Any, Callable, Mapping, Sequence

from attnlab.sweeps import runner, spec


def _number(name: str, value: Any, minimum: float, kind=(int, float)) -> None:
  if isinstance(value, bool) or not isinstance(value, kind) or value < minimum:
    what = "an integer" if kind is int else "a number"
    raise ValueError(f"{name}={value!r}; must be {what} >= {minimum:g}")


@dataclasses.dataclass(frozen=True)
class RayOptions:
  """Where the trials run and what each asks for. Field errors name the command's flags."""

  address: str | None = None  # HOST:PORT, ray://HOST:PORT or auto; None: a local cluster
  cpus_per_trial: float = 1.0  # the task's num_cpus
  gpus_per_trial: float = 0.0  # the task's num_gpus (Ray sets CUDA_VISIBLE_DEVICES)
  max_retries: int = 2  # retries of a task whose worker died or whose trial was interrupted
  num_cpus: int | None = None  # the local cluster's CPUs (None: all of this machine's)
  connect_timeout_s: float = 10.0  # how long an address may take to answer

  def __post_init__(self):
    if self.address is not None:
      _host_port(self.address)
    _number("ray_cpus_per_trial", self.cpus_per_trial, 0)
    _number("ray_gpus_per_trial", self.gpus_per_trial, 0)
    _number("ray_max_retries", self.max_retries, 0, int)
    if self.num_cpus is not None:
      _number("ray_num_cpus", self.num_cpus, 1, int)
      if self.address is not None:
        raise ValueError("ray_num_cpus sizes a local cluster; a cluster at ray_address has its own")
    _number("ray_connect_timeout_s", self.connect_timeout_s, 0.1)


def _host_port(address: str) -> tuple[str, int] | None:
  """(host, port) to check before connecting; None for ``auto`` (Ray finds the local cluster)."""
  if not isinstance(address, str):
    raise ValueError(f"ray_address={address!r}; must be HOST:PORT, ray://HOST:PORT or auto")
  if address == "auto":
    return None
  rest = address[len("ray://"):] if address.startswith("ray://") else address
  host, sep, port = rest.rpartition(":")
  if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
    raise ValueError(f"ray_address={address!r}; must be HOST:PORT, ray://HOST:PORT or auto")
  return host.strip("[]"), int(port)


def require():
  """The ray module; ValueError naming the extra when it is not installed."""
  try:
    import ray  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ValueError(f"--executor ray needs the 'ray' extra: pip install -e .[ray] ({e})") from None
  return ray


def check_answers(address: str, timeout_s: float) -> None:
  """A TCP connection to the address within ``timeout_s``, else ValueError: Ray itself would
  retry a silent address for minutes."""
  host_port = _host_port(address)
  if host_port is None:
    return
  try:
    socket.create_connection(host_port, timeout=timeout_s).close()
  except OSError as e:
    raise ValueError(f"ray_address={address!r} does not answer within {timeout_s:g}s ({e}); "
                     "start the cluster (ray start --head) or leave --ray_address out for a "
                     "local one") from None


def connect(ray, options: RayOptions) -> bool:
  """Connects to (or starts) the cluster; True when this call initialised Ray (then shut it down)."""
  if ray.is_initialized():
    return False
  quiet = dict(log_to_driver=False, logging_level=logging.WARNING)
  if options.address is not None:
    check_answers(options.address, options.connect_timeout_s)
    ray.init(address=options.address, **quiet)
  else:
    ray.init(num_cpus=options.num_cpus, include_dashboard=False, **quiet)
  return True


class TrialInterrupted(RuntimeError):
  """A trial ended unfinished for a reason a retry can fix (killed, preempted, crashed)."""


def run_trial(trial: spec.Trial, config: str, workdir: str,
              train_command: Sequence[str] | None, env: Mapping[str, str] | None,
              submission: str) -> dict:
  """The Ray task: one attempt of ``trial``; raises TrialInterrupted so that Ray retries it."""
  attempt = runner.start_attempt(trial, config=config, workdir=workdir,
                                 train_command=train_command, env=env, executor="ray",
                                 submission=submission, die_with_parent=True)
  with attempt:
    record = attempt.wait()
  if not runner.is_finished(attempt.trial_dir) and record["returncode"] != runner.INPUT_ERROR_EXIT:
    raise TrialInterrupted(runner.outcome_line(trial.name, record))
  return record


def _outcome(ray, ref, trial: spec.Trial, trial_dir: str, submission: str) -> dict:
  try:
    return ray.get(ref)
  except ray.exceptions.RayError as e:
    record = runner.read_json(os.path.join(trial_dir, runner.TRIAL_RECORD))
    if record and record.get("submission") == submission and not isinstance(
        e, ray.exceptions.WorkerCrashedError):
      return record  # the last retry's own record says why
    first = next((line.strip() for line in str(e).splitlines() if line.strip()), "")
    return runner.record_failure(trial_dir, trial, "ray", f"ray: {type(e).__name__}: {first}")


def run_trials(trials: Sequence[spec.Trial], *, config: str, workdir: str, options: RayOptions,
               train_command: Sequence[str] | None = None, env: Mapping[str, str] | None = None,
               log: Callable[[str], None] = print, poll_s: float = 1.0,
               on_end: Callable[[str], None] | None = None) -> dict[str, dict]:
  """Runs ``trials`` as Ray tasks and waits for them; returns their records (``on_end(name)`` is
  called as each task ends).

  ``env`` is added to each worker's environment. Interrupting the sweep cancels the tasks: each
  trial is stopped at a checkpoint (SIGTERM) and resumes when the sweep runs again.
  """
  ray = require()
  if not trials:
    return {}
  owned = connect(ray, options)
  refs, records = {}, {}
  try:
    task = ray.remote(num_cpus=options.cpus_per_trial, num_gpus=options.gpus_per_trial,
                      max_retries=options.max_retries,
                      retry_exceptions=[TrialInterrupted])(run_trial)
    submission = f"ray-{uuid.uuid4().hex[:12]}"  # marks the records of this run's attempts
    for trial in trials:
      trial_dir = os.path.join(workdir, trial.name)
      os.makedirs(trial_dir, exist_ok=True)
      runner.write_json(os.path.join(trial_dir, runner.JOB_RECORD), {
          "executor": "ray", "address": options.address or "local", "submitted": time.time(),
          "submission": submission, "max_retries": options.max_retries})
      refs[task.remote(trial, config, workdir, train_command, env, submission)] = trial
      log(f"[sweep] {trial.name}: submitted to ray ({len(refs)}/{len(trials)})")
    while refs:
      done, _ = ray.wait(list(refs), num_returns=1, timeout=poll_s)
      for ref in done:
        trial = refs.pop(ref)
        records[trial.name] = _outcome(ray, ref, trial, os.path.join(workdir, trial.name),
                                       submission)
        log(runner.outcome_line(trial.name, records[trial.name]))
        if on_end is not None:
          on_end(trial.name)
  except KeyboardInterrupt:
    for ref in refs:  # the task's attempt stops its trial at a checkpoint
      ray.cancel(ref)
    ray.wait(list(refs), num_returns=len(refs), timeout=runner.STOP_GRACE_S)
    raise
  finally:
    if owned:
      ray.shutdown()
  return records
