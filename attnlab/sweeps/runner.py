"""One trial attempt as a ``scripts/train.py`` subprocess, and the local executor (N at a time).

A trial is finished when its ``summary.json`` has a terminal status ("done", or "nan": a diverged
run gives the same result again). Any other trial (never started, killed, preempted, failed) is
(re)started with the same workdir, so the training loop resumes it from its last checkpoint. Every
executor (local here, ``slurm_executor``, ``ray_executor``) runs a trial through ``start_attempt``:
the same command, the same files in the trial directory. While an attempt runs,
``TRIAL/sweep_running.json`` says who runs it and where; when it ends, ``TRIAL/sweep_trial.json``
records its outcome: exit code, peak resident memory of the process, wall time and the last lines
of stderr.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Callable, Mapping, Sequence

from attnlab.sweeps import spec

TERMINAL = ("done", "nan")
TRIAL_RECORD = "sweep_trial.json"  # the last attempt that ended
RUNNING_RECORD = "sweep_running.json"  # the attempt in progress (removed when it ends)
JOB_RECORD = "sweep_job.json"  # the executor's last submission of the trial (slurm, ray)
STDOUT, STDERR = "train.out", "train.err"
INPUT_ERROR_EXIT = 2  # scripts/train.py's exit status for a bad config: a retry cannot help
HEARTBEAT_S = 20.0  # how often a running attempt touches its running record
STOP_GRACE_S = 120.0  # how long a stopped trial may take to save its checkpoint and exit
# attnlab.train.compilation.ENV, named here so that the sweep does not import JAX.
CACHE_ENV = "ATTNLAB_COMPILATION_CACHE"
CACHE_DIR = ".jax_cache"  # under the sweep workdir: one cache for every trial on every node
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


def write_json(path: str, record: Mapping) -> None:
  """Written whole or not at all (another node may read it meanwhile)."""
  tmp = f"{path}.{socket.gethostname()}.{os.getpid()}.tmp"
  with open(tmp, "w") as f:
    json.dump(record, f, indent=1)
  os.replace(tmp, path)


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


def trial_env(workdir: str, env: Mapping[str, str] | None = None,
              base: Mapping[str, str] | None = None) -> dict[str, str]:
  """A trial's environment: ``base`` (this process's) with ``env`` on top, and the sweep's shared
  compilation cache ``WORKDIR/.jax_cache`` unless one of them names a cache already."""
  out = dict(os.environ if base is None else base)
  out.update(env or {})
  out.setdefault(CACHE_ENV, os.path.join(os.path.abspath(workdir), CACHE_DIR))
  return out


def _tail(path: str, lines: int = _TAIL_LINES) -> str:
  try:
    with open(path, "rb") as f:
      f.seek(0, os.SEEK_END)
      f.seek(max(0, f.tell() - 16384))
      text = f.read().decode("utf-8", "replace")
  except OSError:
    return ""
  return "\n".join(text.splitlines()[-lines:])


def _job_id() -> str | None:
  """The cluster job this process runs in, if any, as submitit names it (``ARRAY_TASK`` for a
  job array's task); submitit's local executor first, whose jobs may run inside a SLURM one."""
  if os.environ.get("SUBMITIT_LOCAL_JOB_ID"):
    return os.environ["SUBMITIT_LOCAL_JOB_ID"]
  if os.environ.get("SLURM_ARRAY_JOB_ID"):
    return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
  return os.environ.get("SLURM_JOB_ID") or None


_PR_SET_PDEATHSIG = 1


def _child_setup() -> Callable[[], None] | None:
  """For trials run by a worker (a Ray task, a SLURM job): the trial dies with the worker (a
  retry must not meet an orphan still writing the same directory) and ignores SIGUSR2, which
  SLURM sends to every process of the job and which only the worker handles (it stops the trial
  at a checkpoint). Linux only; elsewhere the trial is left as it is."""
  if not sys.platform.startswith("linux"):
    return None
  libc = ctypes.CDLL(None, use_errno=True)  # loaded before the fork: the child only calls it
  prctl, set_handler = libc.prctl, libc.signal
  usr2, kill, ignore = int(signal.SIGUSR2), int(signal.SIGKILL), ctypes.c_void_p(1)  # SIG_IGN

  def setup():
    prctl(_PR_SET_PDEATHSIG, kill)
    set_handler(usr2, ignore)
  return setup


class Attempt:
  """A launched trial: its process, its running record, and the trial record written when it ends.

  ``with attempt:`` stops the process (SIGTERM: the loop saves a checkpoint and exits) if the block
  is left before it ended, so an interrupted worker leaves a resumable trial.
  """

  def __init__(self, trial: spec.Trial, trial_dir: str, command: Sequence[str],
               env: Mapping[str, str] | None, *, executor: str = "local",
               submission: str | None = None, die_with_parent: bool = False):
    self.trial, self.trial_dir, self.command = trial, trial_dir, list(command)
    # Which submission this attempt belongs to: the cluster job, or the executor's own id.
    self.executor, self.job_id, self.submission = executor, _job_id(), submission
    self.start = time.time()
    self.resumed_from = (checkpoint_steps(trial_dir) or [None])[-1]
    self.record: dict | None = None
    self._terminated = False
    with open(os.path.join(trial_dir, STDOUT), "ab") as out, \
        open(os.path.join(trial_dir, STDERR), "ab") as err:
      self.proc = subprocess.Popen(self.command, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                   env=dict(env) if env is not None else None,
                                   preexec_fn=_child_setup() if die_with_parent else None)
    self._running_path = os.path.join(trial_dir, RUNNING_RECORD)
    self._beat = self.start
    write_json(self._running_path, {
        "trial": trial.name, "executor": executor, "host": socket.gethostname(),
        "pid": self.proc.pid,  # the training process
        "runner_pid": os.getpid(),  # the process that started it and waits for it
        "job_id": self.job_id, "submission": submission, "started": self.start,
        "resumed_from_step": self.resumed_from})

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    if self.record is None:
      self.stop()

  def poll(self) -> dict | None:
    """The attempt's record once the process has exited (reaped here, to read its peak memory)."""
    if self.record is not None:
      return self.record
    try:
      pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
    except ChildProcessError:  # reaped by the poll a signal handler's stop() interrupted
      return None
    if pid == 0:
      if time.time() - self._beat > HEARTBEAT_S:  # tells other nodes the attempt is alive
        self._beat = time.time()
        try:
          os.utime(self._running_path)
        except OSError:
          pass
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
        "executor": self.executor,
        "host": socket.gethostname(),
        "job_id": self.job_id,
        "submission": self.submission,
        "returncode": rc,
        "status": summary_status if rc == 0 and summary_status else "failed",
        "resumed_from_step": self.resumed_from,
        "peak_rss_mb": usage.ru_maxrss / 1024.0,  # Linux reports kilobytes
        "attempt_wall_s": wall,
        "ended": time.time(),
        # Over the attempts that ended with a record (a killed worker records nothing).
        "attempts": previous.get("attempts", 0) + 1,
        "total_wall_s": previous.get("total_wall_s", 0.0) + wall,
    }
    if record["status"] not in TERMINAL:
      record["stderr_tail"] = _tail(os.path.join(self.trial_dir, STDERR))
    write_json(record_path, record)
    try:
      os.remove(self._running_path)
    except OSError:
      pass
    self.record = record
    return record

  def wait(self, poll_s: float = 0.5) -> dict:
    while (record := self.poll()) is None:
      time.sleep(poll_s)
    return record

  def _signal(self, sig: int) -> None:
    # os.kill, not Popen.send_signal: that reaps an exited process first, and the peak memory
    # of the trial is known only to the wait4 in poll().
    try:
      os.kill(self.proc.pid, sig)
    except ProcessLookupError:
      pass

  def terminate(self) -> None:
    """SIGTERM, once: the loop saves a checkpoint and exits "preempted"."""
    if self.record is None and not self._terminated:
      self._terminated = True
      self._signal(signal.SIGTERM)

  def stop(self, grace_s: float = STOP_GRACE_S) -> dict | None:
    """SIGTERM, SIGKILL after ``grace_s``; the record (None only when a poll this call interrupted
    is writing it)."""
    self.terminate()
    if not self._ended_within(grace_s):
      self._signal(signal.SIGKILL)
      self._ended_within(10.0)
    return self.record

  def _ended_within(self, seconds: float) -> bool:
    deadline = time.time() + seconds
    while self.poll() is None:
      if time.time() > deadline:
        return False
      time.sleep(0.05)
    return True


def start_attempt(trial: spec.Trial, *, config: str, workdir: str,
                  train_command: Sequence[str] | None = None,
                  env: Mapping[str, str] | None = None, executor: str = "local",
                  submission: str | None = None, die_with_parent: bool = False) -> Attempt:
  """Starts ``trial`` of the sweep in ``workdir``: what every executor runs for a trial.

  ``env`` is added to this process's environment (on a cluster node: the node's); the default
  ``train_command`` is this installation's ``scripts/train.py``.
  """
  trial_dir = os.path.join(workdir, trial.name)
  os.makedirs(trial_dir, exist_ok=True)
  command = trial_command(list(train_command or default_train_command()), config, trial, trial_dir)
  return Attempt(trial, trial_dir, command, trial_env(workdir, env), executor=executor,
                 submission=submission, die_with_parent=die_with_parent)


def record_failure(trial_dir: str, trial: spec.Trial, executor: str, message: str) -> dict:
  """A trial record for an attempt that ended without writing one (its worker or job died)."""
  previous = read_json(os.path.join(trial_dir, TRIAL_RECORD)) or {}
  tail = _tail(os.path.join(trial_dir, STDERR))
  record = {**previous, "trial": trial.name, "overrides": dict(trial.overrides),
            "executor": executor, "status": "failed", "returncode": None,
            "attempt_wall_s": None, "ended": time.time(),
            "stderr_tail": "\n".join(part for part in (tail, message) if part)}
  write_json(os.path.join(trial_dir, TRIAL_RECORD), record)
  return record


def outcome_line(name: str, record: Mapping) -> str:
  """``[sweep] NAME: done (exit 0, 12s)``, with the last error line when it did not finish."""
  wall = record.get("attempt_wall_s")
  msg = f"[sweep] {name}: {record['status']} (exit {record.get('returncode')}" + \
        (f", {wall:.0f}s)" if wall is not None else ")")
  if "stderr_tail" in record:
    last = record["stderr_tail"].strip().splitlines()[-1:] or ["(no stderr)"]
    msg += f": {last[0]}"
  return msg


def run_trials(trials: Sequence[spec.Trial], *, config: str, workdir: str, workers: int = 1,
               train_command: Sequence[str] | None = None, env: Mapping[str, str] | None = None,
               log: Callable[[str], None] = print, poll_s: float = 0.2,
               on_end: Callable[[str], None] | None = None) -> dict[str, dict]:
  """The local executor: runs ``trials``, ``workers`` at a time; returns their records.

  ``config`` is the ``FILE[:ARG]`` string given to each trial; ``on_end(name)`` is called as each
  trial ends (the sweep rewrites its results then). A failing trial is recorded and the
  others go on. SIGTERM/SIGINT to the sweep is passed on to the running trials (the loop then saves
  a checkpoint and exits), and the sweep waits for them before it exits.
  """
  if workers < 1:
    raise ValueError(f"workers={workers}; must be a positive integer")
  pending, running, records = list(trials), [], {}
  total = len(pending)
  restore = None
  if threading.current_thread() is threading.main_thread():
    # SIGTERM would end the sweep at once; as an exception it lets the trials checkpoint first.
    restore = signal.signal(signal.SIGTERM, _raise_interrupt)
  try:
    while pending or running:
      while pending and len(running) < workers:
        trial = pending.pop(0)
        job = start_attempt(trial, config=config, workdir=workdir, train_command=train_command,
                            env=env)
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
        log(outcome_line(job.trial.name, record))
        if on_end is not None:
          on_end(job.trial.name)
  finally:
    for job in running:  # only when interrupted: let each trial checkpoint and exit
      job.terminate()
    for job in running:
      job.stop()
    if restore is not None:
      signal.signal(signal.SIGTERM, restore)
  return records


def _raise_interrupt(signum, frame):
  del frame
  raise KeyboardInterrupt(f"signal {signum}")
