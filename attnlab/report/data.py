"""A committed experiment (``docs/results/<name>/``) and the tables built from its rows.

Files: ``results.csv`` (the sweep's, one row per trial), ``protocol.json`` (the sweep command and
the training fields every trial shares or varies, written by ``collect``), and any JSON an
analysis wrote (``gradient_lag.json``, ``attention.json``, ``bench.json``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
from typing import Any, Callable, Mapping, Sequence

from attnlab.models import initializers
from attnlab.sweeps import results

LR = "optimizer.learning_rate"  # the grid key of a learning-rate sweep
MODEL_KEYS = ("arg.model", "model.name")
NEGATIVE_EIGENVALUES = "model.allow_negative_eigenvalues"  # the grid key of spec's variant


@dataclasses.dataclass(frozen=True)
class Experiment:
  """One experiment's committed results."""
  name: str  # the folder under docs/results
  directory: str
  rows: list[dict[str, Any]]  # results.csv
  protocol: dict[str, Any]  # protocol.json
  extra: dict[str, Any]  # the other JSON files, by file name without ".json"


def load(results_dir: str, name: str) -> Experiment | None:
  """The experiment committed under ``results_dir/name`` (None when it has not been run)."""
  directory = os.path.join(results_dir, name)
  if not os.path.isdir(directory):
    return None
  csv_path = os.path.join(directory, "results.csv")
  rows = results.read_csv(csv_path) if os.path.isfile(csv_path) else []
  extra, protocol = {}, {}
  for file in sorted(os.listdir(directory)):
    if file.endswith(".json"):
      with open(os.path.join(directory, file)) as f:
        content = json.load(f)
      if file == "protocol.json":
        protocol = content
      else:
        extra[file[:-len(".json")]] = content
  return Experiment(name, directory, rows, protocol, extra)


# The model-field variants of a grid (``spec.grid_with_variants``) a row's model name spells out:
# grid key -> label ("": the value alone). The other model fields of a grid are its axes.
VARIANTS = {"model.block": "", "model.forget_bias": "forget bias ", "model.conv_width": "conv "}


def model_of(row: Mapping[str, Any]) -> str:
  """The row's model name, with its variant spelled out: ``lstm (residual)``, ``lstm (forget
  bias 1)``, ``decoder (conv 4)``, ``deltanet (negative eigenvalues)``."""
  name = next((str(row[k]) for k in MODEL_KEYS if row.get(k) not in (None, "")), "?")
  if row.get(NEGATIVE_EIGENVALUES) is True:
    return f"{name} (negative eigenvalues)"
  spelled = [f"{label}{row[key]:g}" if isinstance(row[key], (int, float)) else f"{label}{row[key]}"
             for key, label in VARIANTS.items() if row.get(key) not in (None, "", 0)]
  return f"{name} ({', '.join(spelled)})" if spelled else name


def finished(rows: Sequence[Mapping[str, Any]], metric: str) -> list[Mapping[str, Any]]:
  return [r for r in rows if r.get("status") in ("done", "nan")
          and isinstance(r.get(metric), (int, float)) and not math.isnan(r[metric])]


@dataclasses.dataclass(frozen=True)
class Cell:
  """A grid cell's score: mean ± std over seeds at its chosen learning rate, the best seed, and
  how those seeds' trials ended."""
  mean: float
  std: float
  best: float
  best_seed: Any
  seeds: int
  learning_rate: float | None  # the learning rate chosen (None: no learning-rate sweep)
  # Every chosen trial converged (train/convergence.py); None: not recorded (a run from before).
  converged: bool | None = None
  solved_steps: tuple = ()  # per chosen trial: the step it solved the task at, or None

  def text(self, digits: int = 3) -> str:
    lr = f" (lr {self.learning_rate:g})" if self.learning_rate is not None else ""
    return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}{lr}"

  def steps_text(self) -> str:
    """The median step at which the solved trials solved the task, and how many did."""
    solved = [s for s in self.solved_steps if s is not None]
    if not self.solved_steps:
      return "-"
    if not solved:
      return f"not solved (0/{len(self.solved_steps)})"
    return f"{statistics.median(solved):,.0f} ({len(solved)}/{len(self.solved_steps)})"


def _number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def _converged(rows: Sequence[Mapping[str, Any]]) -> bool | None:
  values = [r.get("converged") for r in rows]
  if any(v in (None, "") for v in values):
    return None
  return all(v is True or v == "True" for v in values)


def cell(rows: Sequence[Mapping[str, Any]], metric: str, higher: bool = True) -> Cell | None:
  """The score of one grid cell's rows (all seeds and learning rates of one configuration): the
  learning rate with the best mean over seeds of the validation metric (``val_<metric>``; the
  metric itself for rows without one), and the metric (the test batches') at that rate."""
  rows = finished(rows, metric)
  if not rows:
    return None
  chooser = f"val_{metric}" if all(_number(r.get(f"val_{metric}")) for r in rows) else metric
  by_lr: dict[Any, list] = {}
  for r in rows:
    by_lr.setdefault(r.get(LR), []).append(r)
  choose = max if higher else min
  lr = choose(by_lr, key=lambda k: statistics.fmean(float(r[chooser]) for r in by_lr[k]))
  chosen = by_lr[lr]
  values = [float(r[metric]) for r in chosen]
  best = choose(chosen, key=lambda r: float(r[metric]))
  return Cell(mean=statistics.fmean(values),
              std=statistics.stdev(values) if len(values) > 1 else 0.0,
              best=float(best[metric]), best_seed=best.get("seed"), seeds=len(values),
              learning_rate=lr if len(by_lr) > 1 or lr is not None else None,
              converged=_converged(chosen),
              solved_steps=tuple(int(r["solved_step"]) if _number(r.get("solved_step")) else None
                                 for r in chosen) if "solved_step" in chosen[0] else ())


def grid(rows: Sequence[Mapping[str, Any]], key: str | Callable) -> dict[Any, list]:
  """Rows grouped by a column (or a function of the row), in first-seen order."""
  out: dict[Any, list] = {}
  for r in rows:
    out.setdefault(key(r) if callable(key) else r.get(key), []).append(r)
  return out


def pivot(rows: Sequence[Mapping[str, Any]], column: str, metric: str, *, higher: bool = True,
          row_key: Callable = model_of) -> dict[str, dict[Any, Cell | None]]:
  """{model: {column value: Cell}}: one score per model and grid value."""
  return {model: {value: cell(members, metric, higher)
                  for value, members in sorted(grid(model_rows, column).items(),
                                               key=lambda kv: _sortable(kv[0]))}
          for model, model_rows in grid(rows, row_key).items()}


def _sortable(value):
  return (0, value) if isinstance(value, (int, float)) else (1, str(value))


def markdown(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
  lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
  lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in body]
  return "\n".join(lines)


def _cells_table(table: Mapping[str, Mapping[Any, Cell | None]], corner: str,
                 text: Callable[[Cell], str]) -> str:
  """A pivot as Markdown: one row per model, one column per grid value, ``text`` of each cell."""
  columns = sorted({c for cells in table.values() for c in cells}, key=_sortable)
  body = [[model] + [text(cells[c]) if cells.get(c) else "-" for c in columns]
          for model, cells in table.items()]
  return markdown([corner] + [f"{c:g}" if isinstance(c, float) else str(c) for c in columns],
                  body)


def pivot_table(table: Mapping[str, Mapping[Any, Cell | None]], column_label: str,
                digits: int = 3) -> str:
  """A pivot's scores: one row per model, one column per grid value."""
  return _cells_table(table, f"model \\ {column_label}", lambda c: c.text(digits))


def steps_table(table: Mapping[str, Mapping[Any, Cell | None]], column_label: str) -> str:
  """Steps to solve, beside a pivot's scores: per cell the median step at which its chosen
  trials solved the task (validation threshold held for ``patience`` evaluations) and how many
  solved it."""
  return _cells_table(table, f"steps to solve \\ {column_label}", Cell.steps_text)


def params_of(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
  """Parameter count per model (the first finished trial's)."""
  out = {}
  for r in rows:
    if isinstance(r.get("param_count"), (int, float)):
      out.setdefault(model_of(r), int(r["param_count"]))
  return out


def facts_of(rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
  """Per model, the block and decoding state size its trials recorded (``block, state N``)."""
  out = {}
  for r in rows:
    if r.get("block") and isinstance(r.get("state_size"), (int, float)):
      out.setdefault(model_of(r), f"{r['block']}, state {int(r['state_size']):,}")
  return out


def curve_series(exp: Experiment, table: Mapping[str, Mapping[Any, Cell | None]], column: str,
                 x, metric: str) -> dict[str, tuple[list, list, list]]:
  """Validation curves (``curves.json``) at grid value ``x`` of ``column``: per model, the mean
  and std over its seeds at the chosen learning rate, against the step. A trial that stopped
  early (solved) keeps its last value to the longest trial's end."""
  curves = exp.extra.get("curves", {})
  out = {}
  for model, cells in table.items():
    c = cells.get(x)
    members = [curves[r["trial"]] for r in exp.rows if c and model_of(r) == model
               and r.get(column) == x and r.get(LR) == c.learning_rate
               and r.get("trial") in curves and metric in curves[r["trial"]]]
    if not members:
      continue
    steps = sorted({s for m in members for s in m["step"]})
    values = [[_last_at(m["step"], m[metric], s) for s in steps] for m in members]
    out[model] = (steps, [statistics.fmean(v) for v in zip(*values)],
                  [statistics.pstdev(v) for v in zip(*values)])
  return out


def _last_at(steps: Sequence[int], values: Sequence[float], step: int) -> float:
  """The value at the last step at or before ``step`` (the first value before any)."""
  at = [v for s, v in zip(steps, values) if s <= step]
  return at[-1] if at else values[0]


def protocol_text(exp: Experiment, score: str) -> str:
  """The protocol paragraph every table states."""
  p = exp.protocol
  fields = p.get("fields", {})
  parts = [f"`{p['command']}`" if p.get("command") else "(command not recorded)"]
  # A protocol collected before model.init existed describes runs with Flax's initialisation.
  parts.append(f"init {fields.get('model.init', initializers.LEGACY)}")
  if fields.get("patience") not in (None, "0"):
    parts.append(f"validation every {fields.get('eval_every', '?')} steps, stopped once solved "
                 f"for {fields['patience']} validations in a row")
  for label, key in (("steps", "num_steps"), ("batch", "batch_size"),
                     ("learning rates", "optimizer.learning_rate"), ("seeds", "seed"),
                     ("train lengths", "train_lengths"), ("test lengths", "eval_lengths")):
    if key in fields:
      parts.append(f"{label} {fields[key]}")
  counts = {m: n for m, n in params_of(exp.rows).items() if m != "?"}  # "?": no model column
  facts = facts_of(exp.rows)
  if counts:
    parts.append("parameters " + ", ".join(
        f"{m} {n:,}" + (f" ({facts[m]})" if m in facts else "") for m, n in counts.items()))
  parts.append(f"score: {score}")
  return "Protocol: " + "; ".join(parts) + "."
