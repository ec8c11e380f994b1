"""What a claim's render function (in its experiment file, ``experiments/*.py``) uses besides the
tables of ``data.py``: figure links, plot series, cell lookup and the verdict rules.

A verdict is yes / no / partly from the claim's checks, and "undetermined at this budget" when a
cell it rests on has a trial that had not converged (``train/convergence.py``), whose
convergence was not recorded, or that a committed control overrules (``overruled``).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from typing import Mapping

import numpy as np

from attnlab.report import data

def figure(path: str, alt: str, results_dir: str) -> str:
  """A Markdown image link to ``path``, relative to the report beside ``results_dir``."""
  rel = os.path.relpath(path, os.path.dirname(os.path.abspath(results_dir)))
  return f"![{alt}]({rel})"


def series(table, value=lambda c: c.mean):
  """A pivot as plotting series: model -> (x values, means, stds)."""
  out = {}
  for model, cells in table.items():
    xs = [x for x, c in cells.items() if c is not None]
    out[model] = (xs, [value(cells[x]) for x in xs], [cells[x].std for x in xs])
  return out


def training(exp, table, column: str, label: str, x, metric: str, results_dir: str,
             **plot) -> list[str]:
  """What a researcher asks of a trained grid beside its scores: the steps-to-solve table, and
  the validation curves at grid value ``x`` (one line per model at its chosen learning rate, a
  band over seeds) when the experiment committed them (``curves.json``)."""
  from attnlab import plotting  # pylint: disable=import-outside-toplevel
  parts = [data.steps_table(table, label)] if any(
      c and c.solved_steps for cells in table.values() for c in cells.values()) else []
  curves = data.curve_series(exp, table, column, x, metric)
  if curves:
    name = f"curves_{label.replace(' ', '_')}{x:g}.png" if isinstance(x, (int, float)) else \
        f"curves_{x}.png"
    fig = plotting.line_plot(curves, os.path.join(exp.directory, name), xlabel="step",
                             ylabel=f"validation {metric}", band=True,
                             title=f"learning curves at {label} {x} (mean ± std over seeds, "
                             "chosen lr)", **plot)
    parts.append(figure(fig, f"learning curves at {label} {x}", results_dir))
  return parts


def _control_rows(exp) -> list[list[str]]:
  path = os.path.join(exp.directory, "controls.csv")
  if not os.path.exists(path):
    return []
  with open(path, newline="", encoding="utf-8") as f:
    return list(csv.reader(f))


def controls(exp, results_dir: str) -> list[str]:
  """The experiment's committed controls (``controls.csv`` beside its results, one row per run
  outside the sweep: an independent implementation, another initialisation, a longer budget) as a
  Markdown table under a heading; nothing when it has none."""
  rows = _control_rows(exp)
  if not rows:
    return []
  path = os.path.join(exp.directory, "controls.csv")
  rel = os.path.relpath(path, os.path.dirname(os.path.abspath(results_dir)))
  return [f"*Controls* ({rel}): runs outside the sweep that tell whether a failing cell is the "
          "model's, its initialisation's, its budget's or attnlab's implementation's, with the "
          "command of each.",
          data.markdown(rows[0], rows[1:])]


def at(table, model_prefix: str, x):
  """The cell of the first model whose name starts with ``model_prefix`` at grid value x."""
  for model, cells in table.items():
    if model.split(" ")[0] == model_prefix and cells.get(x) is not None:
      return cells[x]
  return None


def overruled(exp, rests_on: Mapping[str, data.Cell | None]) -> dict[str, data.Cell | None]:
  """``rests_on`` with every cell that a committed control overrules marked as not converged.

  A control row overrules a cell when its ``overrules`` column names the cell's label (``lstm at
  T=400``): a run of the same cell with a longer budget that left the plateau the sweep's trials
  sat on, say. Flat validation curves then met the convergence test without the trials having
  finished; the verdict must not rest on them. The label gains "(overruled by a control)"."""
  rows = _control_rows(exp)
  if not rows or "overrules" not in rows[0]:
    return dict(rests_on)
  at = rows[0].index("overrules")
  named = {r[at].strip() for r in rows[1:] if len(r) > at and r[at].strip()}
  out = {}
  for label, c in rests_on.items():
    if label in named and c is not None:
      out[f"{label} (overruled by a control)"] = dataclasses.replace(c, converged=False)
    else:
      out[label] = c
  return out


UNDETERMINED = "undetermined at this budget"


def verdict(checks: list[tuple[bool, str]],
            rests_on: Mapping[str, data.Cell | None] | None = None) -> tuple[str, str]:
  """yes / no / partly from the checks, unless ``determined`` says the budget leaves it open."""
  held = [text for ok, text in checks if ok]
  failed = [text for ok, text in checks if not ok]
  outcome = "yes" if not failed else ("no" if not held else "partly")
  reason = "; ".join([f"holds: {t}" for t in held] + [f"fails: {t}" for t in failed])
  return determined(outcome, reason, rests_on)


def determined(outcome: str, reason: str,
               rests_on: Mapping[str, data.Cell | None] | None) -> tuple[str, str]:
  """The verdict, or undetermined when a cell it rests on (label -> cell) has a chosen trial
  that had not converged, or whose convergence was not recorded (a run from before)."""
  cells = {label: c for label, c in (rests_on or {}).items() if c is not None}
  improving = [label for label, c in cells.items() if c.converged is False]
  unknown = [label for label, c in cells.items() if c.converged is None]
  if not improving and not unknown:
    return outcome, reason
  why = ([f"still improving: {', '.join(improving)}"] if improving else []) + (
      [f"convergence not recorded (runs from before the converged protocol) for "
       f"{len(unknown)} of {len(cells)} cells"] if unknown else [])
  return UNDETERMINED, "; ".join(why) + f". Checks as they stand ({outcome}): {reason}"


def cells(table, label: str = "") -> dict[str, data.Cell | None]:
  """label -> cell of every cell of a pivot (for checks that read the whole table)."""
  return {f"{m} at {label}{x:g}" if isinstance(x, (int, float)) else f"{m} on {x}": c
          for m, by_x in table.items() for x, c in by_x.items()}


def exponent(xs, ys) -> float:
  """The slope of log y against log x (least squares)."""
  if len(xs) < 2:
    return math.nan
  return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])
