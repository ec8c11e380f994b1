"""Evaluation on the tfds sets: the metrics of the examples read back by hand, on 1 and 4 devices,
in the loop, and a clear error before compiling when the set is missing or too small."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest

from attnlab.analysis import restore
from attnlab.tasks import tfds_builder
from attnlab.train import config as config_lib
from attnlab.train import eval_sets, loop, optim, parallel, step
from attnlab.models import task_model
from attnlab.train import state as state_lib
from tests.train import helpers

SEED = 1234  # the default config's eval_seed


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp("eval_data")
  config = helpers.tiny_config("lstm", "copy")
  task = config_lib.build(config).task
  # 3 batches of 8 at the training length; the loop reads the first 2 (eval_batches=2).
  tfds_builder.build(root, "copy", {k: v for k, v in config.task.items() if k != "name"},
                     lengths=[config.train_min_length], examples=24, seed=SEED)
  return str(root), config, task


def _state(config, task):
  setup = config_lib.build(config)
  tx, schedule = optim.make_optimizer(config.optimizer, config.num_steps)
  return state_lib.create(setup.model, tx, schedule, task.output_kind, jax.random.PRNGKey(3),
                          task_model.dummy_inputs(task))


def test_metrics_are_those_of_the_read_examples(data_dir):
  root, config, task = data_dir
  config.eval_data_dir, config.eval_batches = root, 2
  n = config.train_min_length
  state = _state(config, task)
  # Reference: the examples read straight from tfds, one eval_step per batch, averaged on the host.
  by_hand = [jax.device_get(step.eval_step(state, jax.tree_util.tree_map(np.asarray, b)))
             for b in tfds_builder.eval_batches(root, task, n, config.batch_size, seed=SEED,
                                                num_batches=2)]
  expected = {k: np.mean([m[k] for m in by_hand]) for k in by_hand[0]}
  sets = eval_sets.read(config, task, [n])
  assert sets[n]["inputs"].shape == (2, config.batch_size, n)
  single = eval_sets.make(config, task, None, sets)
  mesh = parallel.make_mesh()
  sharded = eval_sets.make(config, task, mesh, sets)
  assert mesh.size == 4
  for evaluation in (single, sharded):
    got = parallel.host_scalars(evaluation(state, n))
    for k, v in expected.items():
      np.testing.assert_allclose(got[k], v, rtol=1e-5, atol=1e-6, err_msg=k)


def test_loop_evaluates_on_the_set(data_dir, tmp_path):
  root, _, _ = data_dir
  config = helpers.tiny_config("lstm", "copy", num_steps=2, log_every=1, eval_every=2,
                               checkpoint_every=2, eval_batches=2, eval_data_dir=root)
  summary = loop.train_and_evaluate(config, str(tmp_path))
  with open(os.path.join(tmp_path, "eval.jsonl")) as f:
    records = [json.loads(line) for line in f]
  assert [r["step"] for r in records] == [2]
  assert summary["final_eval"] == records[-1]
  # Checkpoint evaluation of the run reads the same set and reproduces the logged evaluation.
  again = restore.evaluate_lengths(restore.load_run(str(tmp_path)), [config.train_min_length])
  for k, v in records[-1]["lengths"][str(config.train_min_length)].items():
    np.testing.assert_allclose(again["lengths"][str(config.train_min_length)][k], v, rtol=1e-5)


@pytest.mark.parametrize("overrides, message", [
    (dict(eval_batches=4), "24 usable examples; eval_batches \\* batch_size = 32"),
    (dict(eval_lengths=[12]), "no evaluation set .* length=12"),
    (dict(eval_seed=5), "no evaluation set .* seed=5"),
])
def test_missing_or_small_set_raises_before_compiling(data_dir, tmp_path, monkeypatch, overrides,
                                                      message):
  root, _, _ = data_dir
  config = helpers.tiny_config("lstm", "copy", eval_data_dir=root, **overrides)

  def no_compiling(*args, **kwargs):
    raise AssertionError("compiled before checking the evaluation set")
  monkeypatch.setattr(jax, "jit", no_compiling)
  with pytest.raises(ValueError, match=message) as info:
    loop.train_and_evaluate(config, str(tmp_path))
  assert "scripts/build_data.py --task copy" in str(info.value)
