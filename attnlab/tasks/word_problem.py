"""The word problem of a finite group (Merrill, Petty & Sabharwal 2024, "The Illusion of State in
State-Space Models"): state tracking.

Input of length L: group elements g_1 .. g_L drawn uniformly (token = element index). The target at
position t is the running product g_1 g_2 .. g_t (per-token, mask 1 everywhere in the row). Groups:

  s5      the symmetric group on 5 points (120 elements)      non-solvable: NC1-complete
  a5      the alternating group on 5 points (60)               non-solvable: NC1-complete
  s4      the symmetric group on 4 points (24)                 solvable
  a4xz5   A4 x Z5, pairs composed componentwise (60)           solvable
  z60     the cyclic group of order 60, addition mod 60 (60)   abelian

A permutation p is the tuple (p(0), .., p(n-1)); the product a b is the composition "b, then a":
(a b)(i) = a(b(i)). Elements are numbered in the lexicographic order of their tuples (alternating
groups: the even permutations in that order; A4 x Z5: (a, z) pairs, a outer), so element 0 is the
identity in every group. The products are exact: a Cayley table built on the host from the tuples
(``cayley_table``), and a prefix scan over it on the device.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from attnlab.tasks import base
from attnlab.tasks import common

GROUPS = ("s5", "a5", "s4", "a4xz5", "z60")


@dataclasses.dataclass(frozen=True)
class WordProblemConfig:
  group: str = "s5"  # one of GROUPS

  def __post_init__(self):
    if self.group not in GROUPS:
      raise ValueError(f"group={self.group!r}; allowed: {GROUPS}")


def is_even(p: tuple) -> bool:
  inversions = sum(p[i] > p[j] for i in range(len(p)) for j in range(i + 1, len(p)))
  return inversions % 2 == 0


def compose(a: tuple, b: tuple) -> tuple:
  """The permutation a b: b first, then a."""
  return tuple(a[i] for i in b)


@functools.cache
def elements(group: str) -> tuple:
  """The group's elements in index order (tuples; ints for z60; (perm, int) pairs for a4xz5)."""
  if group in ("s5", "s4"):
    return tuple(itertools.permutations(range(int(group[1]))))
  if group == "a5":
    return tuple(p for p in itertools.permutations(range(5)) if is_even(p))
  if group == "a4xz5":
    a4 = [p for p in itertools.permutations(range(4)) if is_even(p)]
    return tuple((p, z) for p in a4 for z in range(5))
  if group == "z60":
    return tuple(range(60))
  raise ValueError(f"group={group!r}; allowed: {GROUPS}")


def multiply(group: str, a, b):
  """The product a b of two elements (as ``elements`` lists them)."""
  if group == "z60":
    return (a + b) % 60
  if group == "a4xz5":
    return compose(a[0], b[0]), (a[1] + b[1]) % 5
  return compose(a, b)


@functools.cache
def cayley_table(group: str) -> np.ndarray:
  """int32[G, G]: table[i, j] = index of elements[i] elements[j]."""
  elems = elements(group)
  index = {e: i for i, e in enumerate(elems)}
  return np.array([[index[multiply(group, a, b)] for b in elems] for a in elems], np.int32)


def sample_padded(config: WordProblemConfig, rng: jax.Array, batch_size: int, lengths_B: jax.Array,
                  padded_length: int) -> dict:
  """Row b: a word of lengths[b] elements and its running products; the identity after it."""
  common.check_batch(batch_size)
  common.check_length("word_problem", padded_length, 1, "one group element")
  table = jnp.asarray(cayley_table(config.group))
  valid_BL = base.valid_BL(lengths_B, padded_length)
  word_BL = jnp.where(valid_BL, base.time_major_randint(rng, batch_size, padded_length, 0,
                                                        table.shape[0]), 0)
  products_BL = jax.lax.associative_scan(lambda a, b: table[a, b], word_BL, axis=1)
  return {"inputs": word_BL, "targets": jnp.where(valid_BL, products_BL, 0).astype(jnp.int32),
          "mask": valid_BL.astype(jnp.float32), "lengths": lengths_B}


def make(config: WordProblemConfig) -> base.Task:
  size = len(elements(config.group))
  padded = functools.partial(sample_padded, config)
  return base.Task(name="word_problem", config=config, vocab_size=size, output_size=size,
                   output_kind=base.PER_TOKEN, sample_fn=base.unpadded(padded),
                   padded_sample_fn=padded)
