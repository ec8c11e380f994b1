"""Solved, early stop and converged: hand-computed cases and brute-force references."""

from __future__ import annotations

import fractions
import json
import math
import random

import pytest

from attnlab.tasks import base
from attnlab.train import convergence as conv
from attnlab.train.convergence import Point

ACC = conv.criterion(base.PER_TOKEN, 0.9, 0.01)
MSE = conv.criterion(base.REGRESSION, 0.9, 0.01)


def _record(step, **per_length):
  return {"step": step, "lengths": {k[1:]: v for k, v in per_length.items()}}


def test_criterion_per_task_kind():
  assert (ACC.metric, ACC.threshold, ACC.higher) == ("accuracy", 0.9, True)
  assert conv.criterion(base.SEQUENCE, 0.5, 0.01).metric == "accuracy"
  assert (MSE.metric, MSE.threshold, MSE.higher) == ("mse", 0.01, False)


def test_point_needs_every_length():
  both = _record(10, L8={"accuracy": 0.95, "loss": 0.1}, L16={"accuracy": 0.9, "loss": 0.2})
  assert conv.point(both, ACC) == Point(10, True, pytest.approx(0.925))
  one = _record(20, L8={"accuracy": 1.0}, L16={"accuracy": 0.89})
  assert conv.point(one, ACC) == Point(20, False, pytest.approx(0.945))
  assert not conv.point(_record(30, L8={"accuracy": math.nan}), ACC).solved
  assert conv.point(_record(5, L100={"mse": 0.01}, L200={"mse": 0.002}), MSE).solved
  assert not conv.point(_record(5, L100={"mse": 0.0100001}), MSE).solved


def _history(flags, every=10):
  return [Point(every * (i + 1), bool(f), 0.0) for i, f in enumerate(flags)]


@pytest.mark.parametrize("flags, patience, want", [
    ([0, 1, 1, 0, 1, 1, 1, 0], 3, 50),
    ([0, 1, 1, 0, 1, 1, 1, 0], 2, 20),
    ([0, 1, 1, 0, 1, 1, 1, 0], 4, None),
    ([0, 0, 1], 0, 30),  # patience 0: the first solved evaluation (no early stop)
    ([0, 0, 1], 1, 30),
    ([], 3, None),
])
def test_solved_step_by_hand(flags, patience, want):
  assert conv.solved_step(_history(flags), patience) == want


def _solved_step_reference(history, patience):
  """The first window of max(patience, 1) evaluations that are all solved."""
  need = max(patience, 1)
  for i in range(len(history) - need + 1):
    if all(p.solved for p in history[i:i + need]):
      return history[i].step
  return None


def test_solved_step_and_stop_match_the_window_reference():
  rng = random.Random(0)
  for _ in range(500):
    history = _history([rng.random() < 0.6 for _ in range(rng.randrange(0, 12))])
    patience = rng.randrange(0, 5)
    want = _solved_step_reference(history, patience)
    assert conv.solved_step(history, patience) == want
    assert conv.should_stop(history, patience) == (patience > 0 and want is not None)


def test_stop_decision_is_the_same_from_any_prefix():
  # What the loop does: after each evaluation, stop once should_stop; a resumed run starts from a
  # saved prefix of the history, so its first stop must be the uninterrupted run's.
  rng = random.Random(1)
  for _ in range(200):
    history = _history([rng.random() < 0.7 for _ in range(10)])
    stops = [i for i in range(1, len(history) + 1) if conv.should_stop(history[:i], 3)]
    if stops:
      assert history[stops[0] - 1].step == conv.solved_step(history, 3) + 20


def _converged_reference(history, patience, epsilon, higher=True):
  if _solved_step_reference(history, patience) is not None:
    return True
  if not history:
    return False
  final = history[-1].step
  early = [p.step for p in history if fractions.Fraction(p.step) <= fractions.Fraction(2 * final, 3)]
  start = early[-1] if early else history[0].step
  upto = [p.value for p in history if p.step <= start]
  after = [p.value for p in history if p.step > start]
  if not after or any(math.isnan(p.value) for p in history):
    return False
  sign = 1 if higher else -1  # the best is the largest of sign * value
  return max(sign * v for v in after) - max(sign * v for v in upto) < epsilon


def test_converged_by_hand():
  flat = [Point(s, False, v) for s, v in [(100, 0.2), (200, 0.5), (300, 0.61), (400, 0.615)]]
  # Last third of 400: after the last evaluation at or before 266.7 (step 200): best 0.615
  # against 0.5 up to it, a gain of 0.115: still improving.
  assert not conv.converged(flat, 3, 0.01)
  assert conv.converged(flat, 3, 0.2)
  later = flat + [Point(500, False, 0.62), Point(600, False, 0.62)]  # after 400: gains 0.005
  assert conv.converged(later, 3, 0.01)
  assert not conv.converged(later[-1:], 3, 1.0)  # one evaluation says nothing about progress
  # At chance, a constant prediction's accuracy jumps between class frequencies: not improving.
  chance = [Point(s, False, v) for s, v in zip(range(300, 6001, 300), [0.117, 0.156, 0.273] * 7)]
  assert conv.converged(chance, 3, 0.01)
  # Lower is better (MSE): a falling loss is improving, a rising one is not.
  falling = [Point(s, False, v) for s, v in [(100, 0.2), (200, 0.1), (300, 0.05)]]
  assert not conv.converged(falling, 3, 0.01, higher=False)
  rising = [Point(s, False, v) for s, v in [(100, 0.05), (200, 0.1), (300, 0.2)]]
  assert conv.converged(rising, 3, 0.01, higher=False)
  assert conv.converged([Point(10, True, 1.0)], 1, 0.0)  # solved
  assert not conv.converged([Point(10, True, 1.0)], 2, 0.0)  # not held long enough
  assert not conv.converged([Point(10, False, math.nan), Point(20, False, math.nan)], 3, 1.0)


def test_converged_matches_the_reference():
  rng = random.Random(2)
  for _ in range(500):
    steps = sorted(rng.sample(range(1, 60), rng.randrange(1, 10)))
    history = [Point(s, rng.random() < 0.3, round(rng.random(), 2)) for s in steps]
    patience, epsilon = rng.randrange(0, 4), rng.choice([0.0, 0.05, 0.3, 1.0])
    higher = rng.random() < 0.5
    assert conv.converged(history, patience, epsilon, higher) == _converged_reference(
        history, patience, epsilon, higher)


def test_history_json_round_trip():
  history = [Point(10, False, 0.1234567890123), Point(20, True, 1.0), Point(30, False, math.nan)]
  back = conv.from_json(json.loads(json.dumps(conv.to_json(history))))
  assert back[:2] == history[:2] and back[2].step == 30 and math.isnan(back[2].value)
  assert conv.outcome(history[:2], 1, 0.01) == {"solved_step": 20, "converged": True}
