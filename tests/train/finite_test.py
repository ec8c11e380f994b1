"""The finite training set (``train_examples``): epochs visit every example once in a fresh order,
batches are pure functions of (data seed, step), only N distinct examples are ever seen, and a run
killed and resumed equals the uninterrupted one bit for bit."""

from __future__ import annotations

import dataclasses
import json
import os
import signal

import jax
import numpy as np
import pytest

from attnlab import configs
from attnlab.tasks import registry
from attnlab.train import config as config_lib
from attnlab.train import data as data_lib
from attnlab.train import finite
from tests.train import fault_tolerance_test as ft

KEY = jax.random.PRNGKey(7)


def indices(step, batch_size, n, key=KEY):
  fn = jax.jit(finite.batch_indices, static_argnums=(2, 3))
  return np.asarray(fn(data_lib.order_key(key), step, batch_size, n))


def test_each_epoch_visits_every_example_once_in_its_own_order():
  n, batch = 10, 4  # batches straddle epochs
  seen = np.concatenate([indices(s, batch, n) for s in range(10)]).reshape(4, n)
  for epoch in seen:
    assert sorted(epoch) == list(range(n))
  assert len({tuple(e) for e in seen}) == 4
  np.testing.assert_array_equal(indices(3, batch, n), seen.reshape(-1)[12:16])  # pure in step
  assert not np.array_equal(indices(0, batch, n, jax.random.PRNGKey(8)), seen[0, :4])
  big = indices(1, 8, 3)  # a batch larger than the set spans several epochs
  assert sorted(big[1:4]) == [0, 1, 2] and sorted(big[4:7]) == [0, 1, 2]


def train_data(task, n, length, **kw):
  """The run's batches (data.TrainData) of a fixed set of ``n`` examples of ``length``."""
  fields = dict(task=task, batch_size=8, seed=0, key=KEY, min_length=length, max_length=length,
                buckets=None, per_example=False, examples=n)
  return data_lib.TrainData(**{**fields, **kw})


def test_only_n_distinct_examples_are_ever_seen():
  task = registry.get_task("word_problem", group="s4")
  n, length = 12, 6
  data = train_data(task, n, length)
  sample = jax.jit(lambda step: data.batch(step, *data.program(length)))
  rows = np.concatenate([np.asarray(sample(s)["inputs"]) for s in range(9)])  # 6 epochs
  assert len({tuple(r) for r in rows}) == n
  # Example i is row 0 of the task's own sample from the i-th set key.
  first = indices(0, data.batch_size, n)
  direct = task.sample(jax.random.fold_in(data_lib.set_key(KEY), int(first[0])), 1, length)
  np.testing.assert_array_equal(rows[0], np.asarray(direct["inputs"])[0])
  fresh = dataclasses.replace(data, examples=0).batch(0, None, length)["inputs"]
  assert not np.array_equal(fresh, rows[:data.batch_size])  # train_examples=0: a fresh batch


def test_padded_examples_are_the_unpadded_ones_padded():
  task = registry.get_task("parity")
  plain = train_data(task, 6, 5).batch(3, None, 5)
  for per_example in (False, True):  # a fixed length: the per-example draw changes nothing
    data = train_data(task, 6, 5, buckets=(8,), per_example=per_example)
    padded = data.batch(3, *data.program(5))
    np.testing.assert_array_equal(np.asarray(padded["inputs"])[:, :5], plain["inputs"])
    np.testing.assert_array_equal(padded["targets"], plain["targets"])
    np.testing.assert_array_equal(padded["lengths"], np.full(8, 5))


def test_bad_train_examples_is_one_line_naming_it():
  c = configs.load_config_file(os.path.join(ft.REPO, "experiments/base.py:task=copy,smoke"))
  c.train_examples = -1
  with pytest.raises(ValueError, match="train_examples=-1; must be >= 0"):
    config_lib.validate(c)
  c.train_examples, c.train_max_length = 16, c.train_min_length + 4
  with pytest.raises(ValueError, match="train_examples=16 needs a fixed training length"):
    config_lib.validate(c)


@pytest.mark.slow
def test_killed_and_resumed_finite_run_is_bit_exact(tmp_path):
  # 24 examples, batches of 8: an epoch every 3 steps, 40 steps.
  extra = ("--config.train_examples=24",)
  ref_dir, chain_dir = str(tmp_path / "ref"), str(tmp_path / "chain")
  reference = ft.start(ref_dir, *extra)
  kill = ft.interrupt_after_progress(chain_dir, signal.SIGKILL, 4, 0.02,
                                     start_run=lambda w: ft.start(w, *extra))
  assert kill["rc"] == -signal.SIGKILL and max(kill["after"]) < ft.NUM_STEPS
  rc, log = ft.finish(ft.start(chain_dir, *extra))
  assert rc == 0 and "resumed from checkpoint step" in log, log[-3000:]
  rc, log = ft.finish(reference)
  assert rc == 0, log[-3000:]
  ft.assert_bit_equal(ft.final_state(chain_dir), ft.final_state(ref_dir))
  with open(os.path.join(ref_dir, "config.json")) as f:
    assert json.load(f)["train_examples"] == 24
