"""Copies a finished sweep, and the analyses its claims need, into ``docs/results/<name>/``.

  collect_sweep(sweep_dir, out_dir, command)      results.csv, protocol.json, curves.json, and
                                                 the per-trial analyses (TRIAL_ANALYSES)
  gradient_lag(sweep_dir, trials, out_dir)       gradient_lag.json (norm against lag per trial)
  attention_on_key(sweep_dir, trial, out_dir)    attention.json and heat maps (distant dependency)

Everything the report shows is then in ``docs/results``: ``build`` reads nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any, Sequence

import numpy as np

from attnlab import configs
from attnlab.sweeps import results, runner
from attnlab.train import workdir_config

# Config fields a protocol states: (label in protocol.json, dotted path in config.json).
PROTOCOL_FIELDS = (("num_steps", "num_steps"), ("batch_size", "batch_size"),
                   ("optimizer.learning_rate", "optimizer.learning_rate"), ("seed", "seed"),
                   ("train_lengths", None), ("eval_lengths", "eval_lengths"),
                   ("eval_batches", "eval_batches"), ("task", "task"), ("model.init", "model.init"),
                   ("eval_every", "eval_every"), ("patience", "patience"))


def _get(tree: dict, dotted: str):
  for part in dotted.split("."):
    if not isinstance(tree, dict) or part not in tree:
      return None
    tree = tree[part]
  return tree


def _lengths_text(lengths: Sequence[int]) -> str:
  lengths = sorted(int(n) for n in lengths)
  if len(lengths) > 6:
    step = lengths[1] - lengths[0]
    evenly = all(b - a == step for a, b in zip(lengths, lengths[1:]))
    return (f"{lengths[0]}..{lengths[-1]}" + (f" every {step}" if step > 1 else "")
            if evenly else f"{len(lengths)} lengths {lengths[0]}..{lengths[-1]}")
  return ", ".join(str(n) for n in lengths)


def _values_text(values: list) -> str:
  unique = []
  for v in values:
    if v not in unique:
      unique.append(v)
  return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in sorted(
      unique, key=lambda v: (not isinstance(v, (int, float)), str(v) if not isinstance(
          v, (int, float)) else v)))


def _relative_config(config: str) -> str:
  """The manifest's ``FILE[:ARG]`` with FILE relative to the working directory, as the sweep
  command names it (the manifest stores it absolute, which would tie a committed protocol to one
  machine)."""
  path, arg = configs.split(config)
  return configs.join(os.path.relpath(path) if os.path.isabs(path) else path, arg)


def protocol(sweep_dir: str, command: str) -> dict[str, Any]:
  """The sweep's command and, per protocol field, the values its trials used."""
  manifest = runner.read_json(os.path.join(sweep_dir, "sweep.json")) or {}
  trial_configs = [runner.read_json(os.path.join(sweep_dir, t["name"], "config.json"))
                   for t in manifest.get("trials", [])]
  trial_configs = [workdir_config.with_legacy_fields(c) for c in trial_configs if c]
  fields = {}
  for label, path in PROTOCOL_FIELDS:
    if label == "train_lengths":
      values = [f"{c['train_min_length']}..{c['train_max_length']}"
                if c["train_min_length"] != c["train_max_length"] else c["train_min_length"]
                for c in trial_configs]
    elif label == "eval_lengths":
      values = [int(c["eval_lengths"][0]) if len(c["eval_lengths"]) == 1 else  # sorts as a number
                _lengths_text(c["eval_lengths"]) for c in trial_configs]
    elif label == "task":
      values = [", ".join(f"{k}={v}" for k, v in sorted(c["task"].items())) for c in trial_configs]
    else:
      values = [_get(c, path) for c in trial_configs]
    values = [v for v in values if v is not None]
    if values:
      fields[label] = _values_text(values)
  return {"command": command, "config": _relative_config(manifest.get("config", "")),
          "trials": len(manifest.get("trials", [])), "fields": fields}


def collect_sweep(sweep_dir: str, out_dir: str, command: str) -> list[str]:
  """results.csv, protocol.json and curves.json of a finished sweep into ``out_dir``; returns
  the paths."""
  os.makedirs(out_dir, exist_ok=True)
  src = os.path.join(sweep_dir, "results.csv")
  if not os.path.isfile(src):
    raise ValueError(f"{sweep_dir} holds no results.csv: run (or --collect_only) the sweep first")
  paths = [shutil.copyfile(src, os.path.join(out_dir, "results.csv"))]
  path = os.path.join(out_dir, "protocol.json")
  with open(path, "w") as f:
    json.dump(protocol(sweep_dir, command), f, indent=1, sort_keys=True)
  paths += [path, _write(out_dir, "curves", curves(sweep_dir))]
  for name in TRIAL_ANALYSES:
    found = per_trial(sweep_dir, f"{name}.json")
    if found:
      paths.append(_write(out_dir, name, found))
  return paths


# JSON files an experiment's own analysis writes into each trial directory (experiments/
# flip_flop.py: ood.json, the error rates out of distribution), gathered by trial name.
TRIAL_ANALYSES = ("ood",)


def per_trial(sweep_dir: str, file: str) -> dict[str, Any]:
  """``{trial: content}`` of ``file`` in every trial directory of the sweep that has one."""
  found = {name: runner.read_json(os.path.join(d, file))
           for name, d in _trial_dirs(sweep_dir).items()}
  return {name: content for name, content in found.items() if content is not None}


def validation_curve(trial_dir: str) -> dict[str, list] | None:
  """A trial's validation curve from its eval.jsonl: ``{"step": [...], metric: [...]}``, each
  metric the mean over the evaluated lengths; a step evaluated again after a resume counts once
  (the last record). None if the trial recorded no validation."""
  by_step = {}
  for record in results.read_jsonl(os.path.join(trial_dir, "eval.jsonl")):
    if record.get("split") == "val" and record.get("lengths"):
      by_step[int(record["step"])] = record["lengths"]
  if not by_step:
    return None
  steps = sorted(by_step)
  metrics = sorted({m for n in by_step.values() for per in n.values() for m in per})
  out = {"step": steps}
  for metric in metrics:
    out[metric] = [float(np.mean([per[metric] for per in by_step[s].values() if metric in per]))
                   for s in steps]
  return out


def _trial_dirs(sweep_dir: str) -> dict[str, str]:
  """Trial name -> its directory, for every trial of the sweep's manifest."""
  manifest = runner.read_json(os.path.join(sweep_dir, "sweep.json")) or {}
  return {t["name"]: os.path.join(sweep_dir, t["name"]) for t in manifest.get("trials", [])}


def curves(sweep_dir: str) -> dict[str, dict]:
  """Every trial's validation curve (``validation_curve``), by trial name."""
  found = {name: validation_curve(d) for name, d in _trial_dirs(sweep_dir).items()}
  return {name: curve for name, curve in found.items() if curve}


def _write(out_dir: str, name: str, content) -> str:
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, f"{name}.json")
  with open(path, "w") as f:
    json.dump(content, f, indent=1, sort_keys=True)
  return path


def gradient_lag(sweep_dir: str, trials: Sequence[str], out_dir: str, *, batch_size: int = 32,
                 length: int | None = None) -> str:
  """The gradient norm against lag of each trial's final checkpoint (``gradient_lag.json``)."""
  from attnlab.analysis import gradient_lag as lag_lib  # pylint: disable=import-outside-toplevel
  from attnlab.analysis import restore  # pylint: disable=import-outside-toplevel
  out = {}
  for trial in trials:
    run = restore.load_run(os.path.join(sweep_dir, trial))
    n = length or run.setup.eval_lengths[-1]
    batch = restore.eval_batch(run, batch_size, n)
    kind = run.setup.task.output_kind
    norms_BL = lag_lib.gradient_norms(run.setup.model, run.state.params, batch, kind)
    profile = lag_lib.lag_profile(norms_BL, kind, batch["mask"])
    out[trial] = {"model": run.setup.model_fields["name"], "length": n,
                  "distance": run.config.task.get("distance"), **profile}
  return _write(out_dir, "gradient_lag", out)


def attention_on_key(sweep_dir: str, trial: str, out_dir: str, *, examples: int = 64) -> str:
  """For a Transformer trained on the distant-dependency task: each layer and head's mean
  attention weight from the query (the last position) onto the key (distance positions before
  it), over ``examples`` evaluation examples; heat maps of the first two (``attention.json``)."""
  from attnlab.analysis import attention_maps  # pylint: disable=import-outside-toplevel
  from attnlab.analysis import restore  # pylint: disable=import-outside-toplevel
  run = restore.load_run(os.path.join(sweep_dir, trial), capture_attention=True)
  length = run.setup.eval_lengths[-1]
  distance = int(run.config.task.distance)
  batch = restore.eval_batch(run, examples, length)
  weights = attention_maps.capture(run.setup.model, run.state.params, batch["inputs"])
  on_key = {layer: np.asarray(w_BNLS[:, :, length - 1, length - 1 - distance]).mean(0).tolist()
            for layer, w_BNLS in weights.items()}
  maps = attention_maps.write_maps(weights, batch["inputs"], os.path.join(out_dir, "maps"), 2)
  return _write(out_dir, "attention", {
      "trial": trial, "length": length, "distance": distance, "examples": examples,
      "uniform": 1.0 / length, "mass_on_key": on_key,
      "maps": [os.path.relpath(p, out_dir) for p in maps]})
