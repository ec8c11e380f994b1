"""When a run has solved its task, when it stops early, and whether it converged.

Pure functions of the run's validation evaluations, each reduced to a ``Point``. The loop saves the
points with every checkpoint, so a resumed run decides exactly as the uninterrupted one. Converged
means solved or no longer *improving*, not "no longer moving": a run flat at chance whose validation
accuracy jumps between class frequencies has not improved, nor has one that got worse.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

from attnlab.tasks import base

# The defaults of the config fields (experiments/base.py), also what a run saved before these
# fields existed is read with (workdir_config.LEGACY_FIELDS gives such a run patience 0).
SOLVE_ACCURACY = 0.99
SOLVE_MSE = 0.01
PATIENCE = 3
CONVERGE_EPSILON = 0.01
VAL_SEED = 4321


@dataclasses.dataclass(frozen=True)
class Criterion:
  """What "solved" means for a task: ``metric`` at or past ``threshold`` at every length."""
  metric: str  # an evaluation metric: "accuracy" or "mse"
  threshold: float
  higher: bool  # solved when metric >= threshold (else metric <= threshold)

  def met(self, value: float) -> bool:
    """NaN never meets it (every comparison with NaN is False)."""
    return value >= self.threshold if self.higher else value <= self.threshold


def criterion(output_kind: str, solve_accuracy: float, solve_mse: float) -> Criterion:
  """Regression tasks are solved by MSE, every other task by accuracy."""
  if output_kind == base.REGRESSION:
    return Criterion("mse", float(solve_mse), higher=False)
  return Criterion("accuracy", float(solve_accuracy), higher=True)


class Point(NamedTuple):
  """One validation evaluation, as much of it as the decisions need."""
  step: int
  solved: bool  # the criterion met at every length
  value: float  # the criterion's metric, mean over lengths


def point(record: Mapping[str, Any], crit: Criterion) -> Point:
  """The ``Point`` of an evaluation record ``{"step", "lengths": {"64": {metric: value}}}``."""
  values = [float(m[crit.metric]) for m in record["lengths"].values()]
  return Point(int(record["step"]), all(crit.met(v) for v in values),
               math.fsum(values) / len(values))


def solved_step(history: Sequence[Point], patience: int) -> int | None:
  """The first step of the first ``max(patience, 1)`` consecutive solved evaluations."""
  need, held = max(int(patience), 1), 0
  for i, p in enumerate(history):
    held = held + 1 if p.solved else 0
    if held == need:
      return history[i - need + 1].step
  return None


def should_stop(history: Sequence[Point], patience: int) -> bool:
  """Whether a run with this history has solved its task and stops (never with patience 0)."""
  return int(patience) > 0 and solved_step(history, patience) is not None


def last_third(history: Sequence[Point]) -> list[Point]:
  """The evaluations from the last one at or before 2/3 of the final step through the final one
  (all of them when none is that early)."""
  final = history[-1].step if history else 0
  start = max((i for i, p in enumerate(history) if 3 * p.step <= 2 * final), default=0)
  return list(history[start:])


def converged(history: Sequence[Point], patience: int, epsilon: float,
              higher: bool = True) -> bool:
  """Solved, or the best metric of the last third beats the best up to it by less than
  ``epsilon`` (``higher``: larger values are better, as accuracy; else smaller, as MSE)."""
  if solved_step(history, patience) is not None:
    return True
  window = last_third(history)
  if len(window) < 2 or not all(math.isfinite(p.value) for p in history):
    return False
  upto = [p.value for p in history[:len(history) - len(window) + 1]]
  recent = [p.value for p in window[1:]]
  gain = max(recent) - max(upto) if higher else min(upto) - min(recent)
  return gain < float(epsilon)


def outcome(history: Sequence[Point], patience: int, epsilon: float,
            higher: bool = True) -> dict[str, Any]:
  """``{"solved_step", "converged"}`` of summary.json and the sweep's results rows."""
  return {"solved_step": solved_step(history, patience),
          "converged": converged(history, patience, epsilon, higher)}


def to_json(history: Sequence[Point]) -> list[list]:
  """Plain JSON (a non-finite value as null: checkpoint metadata is strict JSON)."""
  return [[p.step, p.solved, p.value if math.isfinite(p.value) else None] for p in history]


def from_json(data: Iterable[Sequence]) -> list[Point]:
  return [Point(int(s), bool(b), math.nan if v is None else float(v)) for s, b, v in data]
