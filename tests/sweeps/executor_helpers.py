"""What the executor tests share: a tiny experiment, the sweep command, and waiting on trial files.

The experiment's two trials are the same training run under two names (``lstm-seed0`` and
``lstm-seed0-1``): one is interrupted, the other not, and their results must be equal. Many cheap
checkpoints leave a wide window to interrupt a trial between two of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

from attnlab.sweeps import results, runner

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SWEEP = os.path.join(ROOT, "scripts", "sweep.py")
FIRST, SECOND, BAD = "lstm-seed0", "lstm-seed0-1", "nope-seed0"
COMPARED = ("status", "step", "param_count", "accuracy", "loss", "accuracy@8", "loss@8")
EXPERIMENT = textwrap.dedent(f"""
    from attnlab import configs
    BASE = configs.load_module({os.path.join(ROOT, "experiments", "base.py")!r})

    def get_config(arg=None):
      c = BASE.get_config("model=lstm,task=copy,smoke")
      c.model.d_model = 8
      c.eval_lengths = [c.train_min_length]
      c.num_steps, c.checkpoint_every, c.eval_every, c.log_every = 80, 5, 80, 10
      return c

    def get_sweep(arg=None):
      same = {{"model.name": "lstm", "seed": 0}}
      trials = [same, dict(same)]  # one run, two names
      if arg == "with_bad":
        trials.append({{"model.name": "nope", "seed": 0}})
      return trials
""")


def write_experiment(directory) -> str:
  path = os.path.join(str(directory), "exp.py")
  with open(path, "w") as f:
    f.write(EXPERIMENT)
  return path


def sweep_command(*args: str) -> list[str]:
  return [sys.executable, SWEEP, *args]


def run_sweep_cli(*args: str, env=None, timeout: float = 300) -> subprocess.CompletedProcess:
  return subprocess.run(sweep_command(*args), capture_output=True, text=True, timeout=timeout,
                        env=None if env is None else {**os.environ, **env})


def wait_for_running_checkpoint(trial_dir: str, proc: subprocess.Popen,
                                timeout: float = 240) -> dict:
  """The running record of the trial's attempt once it has saved a checkpoint (mid-run)."""
  deadline = time.time() + timeout
  while time.time() < deadline:
    if proc.poll() is not None:
      raise AssertionError(f"the sweep ended (exit {proc.returncode}) before {trial_dir} "
                           f"saved a checkpoint: {proc.stderr.read()[-3000:] if proc.stderr else ''}")
    record = runner.read_json(os.path.join(trial_dir, runner.RUNNING_RECORD))
    if record and runner.checkpoint_steps(trial_dir):
      return record
    time.sleep(0.02)
  raise AssertionError(f"{trial_dir} saved no checkpoint within {timeout}s")


def rows(workdir: str) -> dict[str, dict]:
  return {r["trial"]: r for r in results.read_csv(os.path.join(workdir, "results.csv"))}


def compared(row: dict) -> dict:
  return {k: row[k] for k in COMPARED}


def record(workdir: str, trial: str) -> dict:
  return runner.read_json(os.path.join(workdir, trial, runner.TRIAL_RECORD)) or {}


def read(workdir: str, trial: str, name: str) -> str:
  with open(os.path.join(workdir, trial, name)) as f:
    return f.read()
