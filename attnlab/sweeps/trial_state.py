"""Where a trial stands, read from its directory alone, for whichever executor ran it.

  done     summary.json has a terminal status ("done", or "nan")
  running  TRIAL/sweep_running.json names a live attempt: on this host its training process is
           alive; on another host its runner touched the record within the last minute
  failed   the last attempt ended without finishing ("failed": a crash or a bad config); the
           detail is its last line of stderr. A newer submission makes it pending again.
  pending  anything else: not started, submitted and queued, preempted or killed (it resumes from
           its last checkpoint)
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import socket
import time
from typing import Callable, Mapping, Sequence

from attnlab.sweeps import runner, spec

STATES = ("pending", "running", "done", "failed")
STALE_S = 3 * runner.HEARTBEAT_S  # a running record from another host untouched this long is dead


@dataclasses.dataclass(frozen=True)
class TrialState:
  trial: str
  state: str  # one of STATES
  detail: str  # what the files say about it, e.g. "preempted at step 20 (ray); resumes there"
  error: str = ""  # failed: the last error line


def _pid_runs(pid: int, trial_dir: str) -> bool:
  """Whether ``pid`` is alive here and (where /proc says) is this trial's training process."""
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    pass
  try:
    with open(f"/proc/{pid}/stat") as f:
      state = f.read().rsplit(")", 1)[1].split()[0]
    with open(f"/proc/{pid}/cmdline", "rb") as f:
      command = f.read()
  except (OSError, IndexError):
    return True  # no /proc: a live pid is all we can know
  if state == "Z":
    return False
  # Empty for a moment while the process starts: nothing to tell it by yet.
  return not command or os.path.abspath(trial_dir).encode() in command


def running(trial_dir: str) -> dict | None:
  """The record of the attempt in progress, or None when no live attempt has the trial."""
  path = os.path.join(trial_dir, runner.RUNNING_RECORD)
  record = runner.read_json(path)
  if not record:
    return None
  if record.get("host") == socket.gethostname() and isinstance(record.get("pid"), int):
    return record if _pid_runs(record["pid"], trial_dir) else None
  try:
    fresh = time.time() - os.path.getmtime(path) < STALE_S
  except OSError:
    return None
  return record if fresh else None


def where(record: Mapping) -> str:
  """``ray, pid 123 on node1 since 12:00:00`` (and the cluster job when there is one)."""
  since = datetime.datetime.fromtimestamp(record.get("started", 0)).strftime("%H:%M:%S")
  job = f" job {record['job_id']}" if record.get("job_id") else ""
  return f"{record.get('executor', '?')}{job}, pid {record.get('pid')} on {record.get('host')} " \
         f"since {since}"


def last_error_line(record: Mapping) -> str:
  lines = (record.get("stderr_tail") or "").strip().splitlines()
  return lines[-1].strip() if lines else f"exit {record.get('returncode')}"


def read(trial_dir: str, name: str | None = None) -> TrialState:
  name = name or os.path.basename(os.path.normpath(trial_dir))
  summary = runner.read_json(os.path.join(trial_dir, "summary.json")) or {}
  if summary.get("status") in runner.TERMINAL:
    return TrialState(name, "done", f"{summary['status']} at step {summary.get('step')}")
  live = running(trial_dir)
  steps = runner.checkpoint_steps(trial_dir)
  at = f", checkpoint at step {steps[-1]}" if steps else ""
  if live:
    return TrialState(name, "running", where(live) + at)
  attempt = runner.read_json(os.path.join(trial_dir, runner.TRIAL_RECORD)) or {}
  job = runner.read_json(os.path.join(trial_dir, runner.JOB_RECORD)) or {}
  resubmitted = job.get("submitted", 0) > attempt.get("ended", 0)
  if attempt.get("status") == "failed" and not resubmitted:
    return TrialState(name, "failed", f"{attempt.get('executor', 'local')}, "
                      f"exit {attempt.get('returncode')}", last_error_line(attempt))
  if job and resubmitted:
    detail = f"submitted to {job.get('executor')}" + \
             (f" as job {job['job_id']}" if job.get("job_id") else "")
  elif attempt:
    detail = f"{attempt.get('status')} ({attempt.get('executor', 'local')})"
  elif steps or os.path.exists(os.path.join(trial_dir, runner.STDERR)):
    detail = "interrupted"
  else:
    return TrialState(name, "pending", "not started")
  return TrialState(name, "pending", detail + (f"; resumes from step {steps[-1]}" if steps else ""))


def to_start(trials: Sequence[spec.Trial], workdir: str,
             log: Callable[[str], None] = print) -> list[spec.Trial]:
  """The trials to (re)start: neither finished nor running anywhere (each skip is logged)."""
  out = []
  for trial in trials:
    trial_dir = os.path.join(workdir, trial.name)
    if runner.is_finished(trial_dir):
      log(f"[sweep] {trial.name}: finished ({runner.trial_status(trial_dir)}), skipped")
    elif (live := running(trial_dir)) is not None:
      log(f"[sweep] {trial.name}: running ({where(live)}), not started again")
    else:
      out.append(trial)
  return out


def status_lines(states: Sequence[TrialState]) -> list[str]:
  """One aligned line per trial: name, state, detail, and the error line of a failed one."""
  width = max((len(s.trial) for s in states), default=0)
  lines = []
  for s in states:
    line = f"{s.trial:<{width}}  {s.state:<7}  {s.detail}"
    lines.append(line + (f": {s.error}" if s.error else ""))
  return lines
