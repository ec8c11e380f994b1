"""ListOps: values against a plain-Python evaluator, LRA's tree shapes and length range, and the
length distribution against LRA's own recursive generator (re-written here in plain Python)."""

from __future__ import annotations

import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.tasks import listops
from attnlab.tasks import registry

OPS = {listops.MIN: min, listops.MAX: max, listops.MED: lambda a: int(np.median(a)),
       listops.SUM_MOD: lambda a: sum(a) % 10}


def parse(tokens, pos=0, depth=1, stats=None):
  """(value, next position) of the expression at ``pos``; records arities and depths."""
  x = tokens[pos]
  if x < 10:
    return x, pos + 1
  assert x in OPS, f"unexpected token {x} at {pos}"
  args, pos = [], pos + 1
  while tokens[pos] != listops.END:
    value, pos = parse(tokens, pos, depth + 1, stats)
    args.append(value)
  if stats is not None:
    stats["arity"].append(len(args))
    stats["depth"].append(depth)
  return OPS[x](args), pos + 1


def test_hand_written_values():
  rows = [[listops.MAX, 2, 9, listops.MIN, 4, 7, listops.END, 0, listops.END],
          [listops.MED, 1, 2, listops.END] + [listops.PAD] * 5,
          [listops.MED, 7, 1, 4, listops.END] + [listops.PAD] * 4,
          [listops.SUM_MOD, 9, 9, listops.SUM_MOD, 5, 5, listops.END, listops.END, listops.PAD]]
  got = listops.evaluate(jnp.array(rows, jnp.int32), max_depth=3)
  np.testing.assert_array_equal(got, [9, 1, 4, 8])


@pytest.mark.parametrize("fields,length", [({}, 64), ({"max_depth": 3, "max_args": 4}, 40)])
def test_values_shapes_and_lengths(fields, length):
  task = registry.get_task("listops", **fields)
  cfg = task.config
  b = {k: np.asarray(v) for k, v in jax.jit(task.sample, static_argnums=(1, 2))(
      jax.random.key(0), 64, length).items()}
  stats = {"arity": [], "depth": []}
  for x, y in zip(b["inputs"], b["targets"]):
    start = int(np.argmax(x != listops.PAD))
    assert (x[:start] == listops.PAD).all() and x[-1] == listops.END  # right-aligned
    size = length - start
    assert listops.shortest(cfg, length) <= size <= length
    value, end = parse(list(x), start, stats=stats)
    assert end == length and value == y
  assert 2 <= min(stats["arity"]) and max(stats["arity"]) <= cfg.max_args
  assert max(stats["depth"]) <= cfg.max_depth - 1  # operations above the deepest level only
  assert len(set(b["targets"])) > 5


def lra_tree_length(rng, depth, max_depth, max_args, limit):
  """Token count of one tree of LRA's generator (lra_benchmarks/data/listops.py semantics), or
  any count above ``limit`` once it is sure to exceed it (those trees are rejected anyway)."""
  if depth < max_depth and rng.random() <= 0.25:
    total = 2
    for _ in range(rng.randint(2, max_args)):
      total += lra_tree_length(rng, depth + 1, max_depth, max_args, limit - total)
      if total > limit:
        return total
    return total
  return 1


def test_length_distribution_matches_lras_generator():
  length, rows = 64, 512
  task = registry.get_task("listops")
  x = np.asarray(jax.jit(task.sample, static_argnums=(1, 2))(jax.random.key(1), rows, length)[
      "inputs"])
  ours = np.sort((x != listops.PAD).sum(1))
  rng, theirs = random.Random(0), []
  while len(theirs) < 2000:  # LRA's rejection: keep the trees in the range
    # Every tree in range has an operation at its root: draw only those (the same conditional).
    n = 2 + sum(lra_tree_length(rng, 2, 10, 10, length) for _ in range(rng.randint(2, 10)))
    if 16 <= n <= length:
      theirs.append(n)
  theirs = np.sort(theirs)
  grid = np.arange(16, length + 1)
  ks = np.max(np.abs(np.searchsorted(ours, grid, "right") / rows
                     - np.searchsorted(theirs, grid, "right") / len(theirs)))
  assert ks < 0.09  # two-sample KS at these sizes: 0.09 is about the 1% critical value


def test_bad_fields_name_themselves():
  with pytest.raises(ValueError, match="max_depth=1"):
    registry.get_task("listops", max_depth=1)
  with pytest.raises(ValueError, match="min_fraction=0"):
    registry.get_task("listops", min_fraction=0.0)
  with pytest.raises(ValueError, match="allow at most 6"):  # [OP d d d d ] at most
    registry.get_task("listops", max_depth=2, max_args=4).sample(jax.random.key(0), 2, 32)
