"""A sweep: every trial of an experiment file's grid, then ``results.csv`` and ``results.md``."""

from __future__ import annotations

import json
import os
from typing import Callable, Mapping, Sequence

from attnlab import configs
from attnlab.sweeps import results, runner, spec

MANIFEST = "sweep.json"


def run_sweep(config: str, workdir: str, *, workers: int = 1, metric: str | None = None,
              train_command: Sequence[str] | None = None, env: Mapping[str, str] | None = None,
              collect_only: bool = False,
              log: Callable[[str], None] = print) -> tuple[list[dict], str]:
  """Runs (or resumes) the sweep of ``FILE[:ARG]`` in ``workdir``; returns (rows, Markdown table).

  Raises ValueError for a file without a grid, before anything runs. The table's metric defaults
  to the experiment file's ``METRIC`` if it has one, else accuracy, mse or loss.
  """
  path, arg = configs.split(config)
  module, trials = spec.load_experiment(config)
  metric = metric or getattr(module, "METRIC", None)
  os.makedirs(workdir, exist_ok=True)
  config = f"{os.path.abspath(path)}:{arg}" if arg else os.path.abspath(path)
  manifest = {"config": config, "metric": metric, "trials": [{"name": t.name, "overrides": dict(t.overrides)}
                                           for t in trials]}
  with open(os.path.join(workdir, MANIFEST), "w") as f:
    json.dump(manifest, f, indent=1)
  if not collect_only:
    log(f"[sweep] {len(trials)} trials of {config} in {workdir}, {workers} at a time")
    runner.run_trials(trials, config=config, workdir=workdir, workers=workers,
                      train_command=train_command, env=env, log=log)
  rows = results.collect(workdir, trials)
  results.write_csv(rows, os.path.join(workdir, "results.csv"))
  table = results.write_table(rows, os.path.join(workdir, "results.md"), metric)
  return rows, table


def failed(rows: Sequence[Mapping]) -> list[str]:
  return [r["trial"] for r in rows if r.get("status") not in runner.TERMINAL]
