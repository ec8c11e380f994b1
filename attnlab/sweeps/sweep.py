"""A sweep: every trial of an experiment file's grid, then ``results.csv`` and ``results.md``.

The trials run on one of three executors, each the same ``scripts/train.py`` command per trial in
the same ``WORKDIR/TRIAL`` directory (``runner.start_attempt``): ``local`` (subprocesses here, N
at a time), ``slurm`` (submitit jobs, ``slurm_executor``) or ``ray`` (Ray tasks, ``ray_executor``).
Whichever ran a trial before, a finished one is skipped and any other resumes.
"""

from __future__ import annotations

import json
import os
from typing import Callable, Mapping, Sequence

from attnlab import configs
from attnlab.sweeps import preflight as preflight_lib
from attnlab.sweeps import results, runner, spec, trial_state

MANIFEST = "sweep.json"
EXECUTORS = ("local", "slurm", "ray")


def check_executor(executor: str, slurm=None, ray=None) -> None:
  """Before anything runs: a known executor, its extra installed, options of its own kind."""
  if executor not in EXECUTORS:
    raise ValueError(f"executor={executor!r}; must be one of {list(EXECUTORS)}")
  if executor != "slurm" and slurm is not None:
    raise ValueError(f"SLURM options given with executor={executor!r}")
  if executor != "ray" and ray is not None:
    raise ValueError(f"Ray options given with executor={executor!r}")
  if executor == "slurm":
    from attnlab.sweeps import slurm_executor  # pylint: disable=import-outside-toplevel
    slurm_executor.require()
  elif executor == "ray":
    from attnlab.sweeps import ray_executor  # pylint: disable=import-outside-toplevel
    ray_executor.require()
    if ray is not None and ray.address is not None:
      ray_executor.check_answers(ray.address, ray.connect_timeout_s)


def run_sweep(config: str, workdir: str, *, executor: str = "local", workers: int = 1,
              slurm=None, ray=None, metric: str | None = None,
              train_command: Sequence[str] | None = None, env: Mapping[str, str] | None = None,
              collect_only: bool = False, preflight: bool = True,
              log: Callable[[str], None] = print) -> tuple[list[dict], str]:
  """Runs (or resumes) the sweep of ``FILE[:ARG]`` in ``workdir``; returns (rows, Markdown table).

  ``executor`` is local (``workers`` at a time), slurm (``slurm``: ``SlurmOptions``) or ray
  (``ray``: ``RayOptions``); ``env`` is added to each trial's environment. Raises ValueError for a
  file without a grid, an unknown executor, a missing extra or (``preflight``, with attnlab's own
  trainer) a trial whose model or task does not build, before anything runs. The table's
  metric defaults to the experiment file's ``METRIC`` if it has one, else accuracy, mse or loss.
  """
  check_executor(executor, slurm=slurm, ray=ray)
  if workers < 1:
    raise ValueError(f"workers={workers}; must be a positive integer")
  path, arg = configs.split(config)
  module, trials = spec.load_experiment(config)
  metric = metric or getattr(module, "METRIC", None)
  if preflight and not collect_only and train_command is None:  # another program's are its own
    cells = preflight_lib.check(config, trials)
    log(f"[sweep] pre-flight: {len(cells)} distinct model/task cells build")
  os.makedirs(workdir, exist_ok=True)
  config = configs.join(os.path.abspath(path), arg)
  manifest = {"config": config, "metric": metric, "trials": [{"name": t.name, "overrides": dict(t.overrides)}
                                           for t in trials]}
  with open(os.path.join(workdir, MANIFEST), "w") as f:
    json.dump(manifest, f, indent=1)
  if not collect_only:
    how = f"{workers} at a time" if executor == "local" else f"on {executor}"
    log(f"[sweep] {len(trials)} trials of {config} in {workdir}, {how}")
    todo = trial_state.to_start(trials, workdir, log)
    common = dict(config=config, workdir=workdir, train_command=train_command, env=env, log=log)
    if executor == "local":
      runner.run_trials(todo, workers=workers, **common)
    elif todo and executor == "slurm":
      from attnlab.sweeps import slurm_executor  # pylint: disable=import-outside-toplevel
      slurm_executor.run_trials(todo, options=slurm or slurm_executor.SlurmOptions(), **common)
    elif todo:
      from attnlab.sweeps import ray_executor  # pylint: disable=import-outside-toplevel
      ray_executor.run_trials(todo, options=ray or ray_executor.RayOptions(), **common)
  rows = results.collect(workdir, trials)
  results.write_csv(rows, os.path.join(workdir, "results.csv"))
  table = results.write_table(rows, os.path.join(workdir, "results.md"), metric)
  return rows, table


def status(workdir: str, config: str | None = None,
           metric: str | None = None) -> tuple[list[trial_state.TrialState], str]:
  """Each trial's state and the table of what has finished so far, from the files alone.

  The trials are ``config``'s grid, else those of the sweep's manifest (``sweep.json``).
  """
  if config is not None:
    module, trials = spec.load_experiment(config)
    metric = metric or getattr(module, "METRIC", None)
  else:
    manifest = runner.read_json(os.path.join(workdir, MANIFEST))
    if manifest is None:
      raise ValueError(f"no sweep in workdir={workdir!r} (no {MANIFEST}); give --config too, or "
                       "run the sweep first")
    trials = [spec.Trial(t["name"], t["overrides"]) for t in manifest["trials"]]
    metric = metric or manifest.get("metric")
  states = [trial_state.read(os.path.join(workdir, t.name), t.name) for t in trials]
  return states, results.table(results.collect(workdir, trials), metric)


def failed(rows: Sequence[Mapping]) -> list[str]:
  return [r["trial"] for r in rows if r.get("status") not in runner.TERMINAL]
