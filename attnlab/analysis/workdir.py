"""What ``scripts/evaluate.py`` does: restore a run, evaluate it at the asked lengths and, on
request, draw its attention maps and its gradient-lag profile. Returns one JSON-ready dict."""

from __future__ import annotations

import os
from typing import Sequence

from attnlab import plotting
from attnlab.analysis import attention_maps
from attnlab.analysis import gradient_lag as gradient_lag_lib
from attnlab.analysis import restore
from attnlab.tasks import registry


def evaluate_workdir(workdir: str, *, checkpoint: str | int = "latest",
                     lengths: Sequence[int | str] | None = None, attention_maps_n: int = 0,
                     gradient_lag: bool = False, gradient_lag_length: int | None = None,
                     gradient_lag_batch: int = 32,
                     plots_dir: str | None = None, task_config: dict | None = None) -> dict:
  """``{"workdir", "checkpoint", "step", "task", "task_fields", "model", "init",
  "lengths": {L: metrics}, "mean": metrics, ...}`` (``init``: the run's initialisation scheme,
  models/initializers.py; ``task_fields``: the task config it was evaluated on).

  ``lengths`` defaults to the run's own evaluation lengths. With ``attention_maps_n`` > 0 the
  result lists the PNG paths under "attention_maps"; with ``gradient_lag`` it holds "gradient_lag"
  (distances and mean gradient norms at ``gradient_lag_length``, default the longest evaluated
  length) and the plot's path. ``task_config`` replaces task fields (``restore.load_run``); the
  result's "task_fields" are those evaluated. Bad input raises ValueError before anything is
  compiled.
  """
  if lengths is not None:
    lengths = restore.parse_lengths(lengths)
  if attention_maps_n < 0:
    raise ValueError(f"--attention_maps={attention_maps_n}; must be >= 0")
  if gradient_lag and gradient_lag_length is not None:
    restore.parse_lengths([gradient_lag_length])
  if attention_maps_n:
    attention_maps.check_model(restore.load_config(workdir).model.name)
  run = restore.load_run(workdir, checkpoint, capture_attention=attention_maps_n > 0,
                         task_config=task_config)
  lengths = restore.check_lengths(run, lengths or run.setup.eval_lengths)
  plots_dir = plots_dir or os.path.join(workdir, "eval")
  record = restore.evaluate_lengths(run, lengths)
  out = {"workdir": os.path.abspath(workdir), "checkpoint": checkpoint, "step": run.step,
         "task": run.setup.task.name, "task_fields": registry.task_fields(run.setup.task),
         "model": run.setup.model_fields["name"], "init": run.setup.model_fields["init"],
         "lengths": record["lengths"], "mean": record["mean"]}

  if attention_maps_n:
    length = lengths[0]
    batch = restore.eval_batch(run, attention_maps_n, length)
    weights = attention_maps.capture(run.setup.model, run.state.params, batch["inputs"])
    out["attention_maps"] = {"length": length, "files": attention_maps.write_maps(
        weights, batch["inputs"], os.path.join(plots_dir, "attention"), attention_maps_n)}

  if gradient_lag:
    gradient_lag_length = gradient_lag_length or lengths[-1]
    batch = restore.eval_batch(run, gradient_lag_batch, gradient_lag_length)
    kind = run.setup.task.output_kind
    model = run.setup.model
    norms_BL = gradient_lag_lib.gradient_norms(model, run.state.params, batch, kind)
    profile = gradient_lag_lib.lag_profile(norms_BL, kind, batch["mask"])
    path = plotting.gradient_lag(
        profile["distances"], profile["mean_grad_norm"],
        os.path.join(plots_dir, "gradient_lag.png"), label=run.setup.model_fields["name"],
        title=f"gradient lag: {run.setup.model_fields['name']} on {run.setup.task.name}, "
              f"length {gradient_lag_length}, step {run.step}")
    out["gradient_lag"] = {"length": gradient_lag_length, "batch_size": gradient_lag_batch,
                           **profile, "file": path}
  return out
