"""Runs sweep trials as ``scripts/train.py`` subprocesses, N at a time.

A trial is finished when its ``summary.json`` has a terminal status ("done", or "nan": a diverged
run gives the same result again); finished trials are skipped. Any other trial (never started,
killed, preempted, failed) is (re)started with the same workdir, so the training loop resumes it
from its last checkpoint. Each attempt's outcome goes to ``TRIAL/sweep_trial.json``: exit code,
peak resident memory of the process, wall time and the last lines of stderr.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, Mapping, Sequence

from attnlab.sweeps import spec

TERMINAL = ("done", "nan")
TRIAL_RECORD = "sweep_trial.json"
STDOUT, STDERR = "train.out", "train.err"
_TAIL_LINES = 20


def default_train_command() -> list[str]:
  """``python scripts/train.py`` from the repository holding this package, else the entry point."""
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  script = os.path.join(root, "scripts", "train.py")
  if os.path.isfile(script):
    return [sys.executable, script]
  return [sys.executable, "-m", "attnlab.cli.train"]


def read_json(path: str) -> dict | None:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def trial_status(trial_dir: str) -> str | None:
  """The status in the trial's summary.json, or None when it has none."""
  summary = read_json(os.path.join(trial_dir, "summary.json"))
  return summary.get("status") if summary else None


def is_finished(trial_dir: str) -> bool:
  return trial_status(trial_dir) in TERMINAL


def checkpoint_steps(trial_dir: str) -> list[int]:
  """Step directories under ``checkpoints/`` (a cheap look; the loop decides what it restores)."""
  try:
    names = os.listdir(os.path.join(trial_dir, "checkpoints"))
  except OSError:
    return []
  return sorted(int(n) for n in names if n.isdigit())


def trial_command(train_command: Sequence[str], config: str, trial: spec.Trial,
                  trial_dir: str) -> list[str]:
  return [*train_command, "--config", spec.trial_config(config, trial.overrides),
          *spec.override_flags(trial.overrides),
          "--workdir", trial_dir]


def _tail(path: str, lines: int = _TAIL_LINES) -> str:
  try:
    with open(path, "rb") as f:
      f.seek(0, os.SEEK_END)
      f.seek(max(0, f.tell() - 16384))
      text = f.read().decode("utf-8", "replace")
  except OSError:
    return ""
  return "\n".join(text.splitlines()[-lines:])


class _Running:
  """A launched trial: its process and the bookkeeping written when it ends."""

  def __init__(self, trial, trial_dir, command, env):
    self.trial, self.trial_dir, self.command = trial, trial_dir, command
    self.start = time.time()
    self.resumed_from = (checkpoint_steps(trial_dir) or [None])[-1]
    with open(os.path.join(trial_dir, STDOUT), "ab") as out, \
        open(os.path.join(trial_dir, STDERR), "ab") as err:
      self.proc = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)

  def poll(self) -> dict | None:
    """The attempt's record once the process has exited (reaped here, to read its peak memory)."""
    pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
    if pid == 0:
      return None
    self.proc.returncode = rc = os.waitstatus_to_exitcode(status)
    summary_status = trial_status(self.trial_dir)
    record_path = os.path.join(self.trial_dir, TRIAL_RECORD)
    previous = read_json(record_path) or {}
    wall = time.time() - self.start
    record = {
        "trial": self.trial.name,
        "overrides": dict(self.trial.overrides),
        "command": self.command,
        "returncode": rc,
        "status": summary_status if rc == 0 and summary_status else "failed",
        "resumed_from_step": self.resumed_from,
        "peak_rss_mb": usage.ru_maxrss / 1024.0,  # Linux reports kilobytes
        "attempt_wall_s": wall,
        # Over the attempts this runner saw end (a sweep killed with its trial records nothing).
        "attempts": previous.get("attempts", 0) + 1,
        "total_wall_s": previous.get("total_wall_s", 0.0) + wall,
    }
    if record["status"] not in TERMINAL:
      record["stderr_tail"] = _tail(os.path.join(self.trial_dir, STDERR))
    with open(record_path, "w") as f:
      json.dump(record, f, indent=1)
    return record


def run_trials(trials: Sequence[spec.Trial], *, config: str, workdir: str, workers: int = 1,
               train_command: Sequence[str] | None = None, env: Mapping[str, str] | None = None,
               log: Callable[[str], None] = print, poll_s: float = 0.2) -> dict[str, dict]:
  """Runs every unfinished trial, ``workers`` at a time; returns the records of those it ran.

  ``config`` is the ``FILE[:ARG]`` string given to each trial. A failing trial is recorded and the
  others go on. SIGTERM/SIGINT to the sweep is passed on to the running trials (the loop then saves
  a checkpoint and exits), and the sweep waits for them before it exits.
  """
  if workers < 1:
    raise ValueError(f"workers={workers}; must be a positive integer")
  train_command = list(train_command or default_train_command())
  pending, running, records = [], [], {}
  for trial in trials:
    trial_dir = os.path.join(workdir, trial.name)
    if is_finished(trial_dir):
      log(f"[sweep] {trial.name}: finished ({trial_status(trial_dir)}), skipped")
    else:
      pending.append(trial)
  total = len(pending)
  restore = None
  if threading.current_thread() is threading.main_thread():
    # SIGTERM would end the sweep at once; as an exception it lets the trials checkpoint first.
    restore = signal.signal(signal.SIGTERM, _raise_interrupt)
  try:
    while pending or running:
      while pending and len(running) < workers:
        trial = pending.pop(0)
        trial_dir = os.path.join(workdir, trial.name)
        os.makedirs(trial_dir, exist_ok=True)
        command = trial_command(train_command, config, trial, trial_dir)
        job = _Running(trial, trial_dir, command, dict(env) if env is not None else None)
        how = (f"resuming from step {job.resumed_from}" if job.resumed_from is not None
               else "starting")
        log(f"[sweep] {trial.name}: {how} ({total - len(pending)}/{total})")
        running.append(job)
      time.sleep(poll_s)
      for job in list(running):
        record = job.poll()
        if record is None:
          continue
        running.remove(job)
        records[job.trial.name] = record
        msg = f"[sweep] {job.trial.name}: {record['status']} (exit {record['returncode']}, " \
              f"{record['attempt_wall_s']:.0f}s)"
        if "stderr_tail" in record:
          last = record["stderr_tail"].strip().splitlines()[-1:] or ["(no stderr)"]
          msg += f": {last[0]}"
        log(msg)
  finally:
    for job in running:  # only when interrupted: let each trial checkpoint and exit
      if job.proc.poll() is None:
        job.proc.send_signal(signal.SIGTERM)
    for job in running:
      try:
        job.proc.wait(timeout=120)
      except subprocess.TimeoutExpired:
        job.proc.kill()
    if restore is not None:
      signal.signal(signal.SIGTERM, restore)
  return records


def _raise_interrupt(signum, frame):
  del frame
  raise KeyboardInterrupt(f"signal {signum}")
