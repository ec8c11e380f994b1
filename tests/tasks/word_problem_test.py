"""The word problem: running products checked against permutations composed in plain Python, and
the Cayley tables against the group axioms."""

from __future__ import annotations

import itertools
import random

import jax
import numpy as np
import pytest

from attnlab.tasks import registry
from attnlab.tasks import word_problem


def sign(p):
  """+1 or -1 from the cycle count (not the inversion count the module uses)."""
  seen, cycles = set(), 0
  for i in range(len(p)):
    if i not in seen:
      cycles += 1
      while i not in seen:
        seen.add(i)
        i = p[i]
  return 1 if (len(p) - cycles) % 2 == 0 else -1


def reference_elements(group):
  if group == "z60":
    return list(range(60))
  n = 5 if group in ("s5", "a5") else 4
  perms = sorted(itertools.permutations(range(n)))
  if group in ("a5", "a4xz5"):
    perms = [p for p in perms if sign(p) == 1]
  if group == "a4xz5":
    return [(p, z) for p in perms for z in range(5)]
  return perms


def reference_product(group, a, b):
  """a b, "b first, then a": (a b)(i) = a(b(i)), component-wise for A4 x Z5."""
  if group == "z60":
    return (a + b) % 60
  if group == "a4xz5":
    return tuple(a[0][b[0][i]] for i in range(4)), (a[1] + b[1]) % 5
  return tuple(a[b[i]] for i in range(len(a)))


@pytest.mark.parametrize("group,size", [("s5", 120), ("a5", 60), ("s4", 24), ("a4xz5", 60),
                                        ("z60", 60)])
def test_running_products_equal_plain_python_composition(group, size):
  task = registry.get_task("word_problem", group=group)
  assert task.vocab_size == task.output_size == size
  elems = reference_elements(group)
  assert list(word_problem.elements(group)) == elems
  b = jax.jit(task.sample, static_argnums=(1, 2))(jax.random.key(0), 4, 12)
  x, y = np.asarray(b["inputs"]), np.asarray(b["targets"])
  assert (np.asarray(b["mask"]) == 1).all()
  for word, products in zip(x, y):
    state = elems[word[0]]
    assert products[0] == word[0]
    for t in range(1, len(word)):
      state = reference_product(group, state, elems[word[t]])
      assert elems[products[t]] == state, f"{group}: position {t}"


@pytest.mark.parametrize("group", word_problem.GROUPS)
def test_cayley_table_is_a_group(group):
  table = word_problem.cayley_table(group)
  g = len(table)
  assert (table[0] == np.arange(g)).all() and (table[:, 0] == np.arange(g)).all()  # identity 0
  for row in (table, table.T):  # a Latin square: every element has an inverse
    assert all(sorted(r) == list(range(g)) for r in row)
  rng = random.Random(0)
  for _ in range(300):
    a, b, c = (rng.randrange(g) for _ in range(3))
    assert table[table[a, b], c] == table[a, table[b, c]]
  abelian = (table == table.T).all()
  assert abelian == (group == "z60")


def test_bad_group_names_itself():
  with pytest.raises(ValueError, match=r"group='s6'; allowed: \('s5'"):
    registry.get_task("word_problem", group="s6")
