"""A sweep: every trial of an experiment file's grid, then ``results.csv`` and ``results.md``.

The trials run on one of three executors, each the same ``scripts/train.py`` command per trial in
the same ``WORKDIR/TRIAL`` directory (``runner.start_attempt``): ``local`` (subprocesses here, N
at a time), ``slurm`` (submitit jobs, ``slurm_executor``) or ``ray`` (Ray tasks, ``ray_executor``).
Whichever ran a trial before, a finished one is skipped and any other resumes. Trials finished by
another run of the sweep, whose workdir is gone (``resume_from``: its ``results.csv``), are
skipped too (``recorded``). ``results.csv`` and ``results.md`` are rewritten as each trial ends,
so a sweep killed half-way leaves the table of what it finished.
"""

from __future__ import annotations

import json
import os
from typing import Callable, Mapping, Sequence

from attnlab import configs
from attnlab.sweeps import preflight as preflight_lib
from attnlab.sweeps import recorded, results, runner, spec, trial_state

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
              resume_from: str | None = None,
              log: Callable[[str], None] = print) -> tuple[list[dict], str]:
  """Runs (or resumes) the sweep of ``FILE[:ARG]`` in ``workdir``; returns (rows, Markdown table).

  ``executor`` is local (``workers`` at a time), slurm (``slurm``: ``SlurmOptions``) or ray
  (``ray``: ``RayOptions``); ``env`` is added to each trial's environment. Raises ValueError for a
  file without a grid, an unknown executor, a missing extra or (``preflight``, with attnlab's own
  trainer) a trial whose model or task does not build, before anything runs. The table's
  metric defaults to the experiment file's ``METRIC`` if it has one, else accuracy, mse or loss.
  ``resume_from``: the ``results.csv`` of an earlier run of this sweep; the trials it finished are
  recorded in the workdir and not run (``recorded``).
  """
  check_executor(executor, slurm=slurm, ray=ray)
  if workers < 1:
    raise ValueError(f"workers={workers}; must be a positive integer")
  path, arg = configs.split(config)
  module, trials = spec.load_experiment(config)
  metric = metric or getattr(module, "METRIC", None)
  done_elsewhere = recorded.load(workdir)
  if resume_from:
    found = recorded.read(resume_from, trials, log)
    log(f"[sweep] --resume_from {resume_from}: {len(found)} finished trial(s) recorded")
    done_elsewhere.update(found)
  to_run = recorded.pending(trials, done_elsewhere)
  if preflight and not collect_only and train_command is None and to_run:
    cells = preflight_lib.check(config, to_run)  # another program's are its own
    log(f"[sweep] pre-flight: {len(cells)} distinct model/task cells build")
  os.makedirs(workdir, exist_ok=True)
  recorded.save(workdir, done_elsewhere)
  config = configs.join(os.path.abspath(path), arg)
  manifest = {"config": config, "metric": metric, "trials": [{"name": t.name, "overrides": dict(t.overrides)}
                                           for t in trials]}
  with open(os.path.join(workdir, MANIFEST), "w") as f:
    json.dump(manifest, f, indent=1)
  def write(_ended: str | None = None) -> tuple[list[dict], str]:
    return write_results(workdir, trials, done_elsewhere, metric)

  if not collect_only:
    how = f"{workers} at a time" if executor == "local" else f"on {executor}"
    log(f"[sweep] {len(trials)} trials of {config} in {workdir}, {how}")
    write()  # what is known before any trial runs
    todo = trial_state.to_start(recorded.pending(trials, done_elsewhere, log), workdir, log)
    common = dict(config=config, workdir=workdir, train_command=train_command, env=env, log=log,
                  on_end=write)
    if executor == "local":
      runner.run_trials(todo, workers=workers, **common)
    elif todo and executor == "slurm":
      from attnlab.sweeps import slurm_executor  # pylint: disable=import-outside-toplevel
      slurm_executor.run_trials(todo, options=slurm or slurm_executor.SlurmOptions(), **common)
    elif todo:
      from attnlab.sweeps import ray_executor  # pylint: disable=import-outside-toplevel
      ray_executor.run_trials(todo, options=ray or ray_executor.RayOptions(), **common)
  return write()


def write_results(workdir: str, trials: Sequence[spec.Trial], done_elsewhere: Mapping,
                  metric: str | None) -> tuple[list[dict], str]:
  """``results.csv`` and ``results.md`` of the sweep as it stands; returns (rows, table)."""
  rows = recorded.collect(workdir, trials, done_elsewhere)
  results.write_csv(rows, os.path.join(workdir, "results.csv"))
  return rows, results.write_table(rows, os.path.join(workdir, "results.md"), metric)


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
  done_elsewhere = recorded.load(workdir)
  states = [trial_state.read(os.path.join(workdir, t.name), t.name) for t in trials]
  states = [trial_state.TrialState(s.trial, "done", f"recorded in {recorded.FILE}")
            if s.trial in done_elsewhere and s.state != "done" else s for s in states]
  return states, results.table(recorded.collect(workdir, trials, done_elsewhere), metric)


def failed(rows: Sequence[Mapping]) -> list[str]:
  return [r["trial"] for r in rows if r.get("status") not in runner.TERMINAL]
