"""Evaluation (attnlab/train/evaluate.py) on the tfds sets: the metrics of the examples read back by hand, on 1 and 4 devices,
in the loop, and a clear error before compiling when the set is missing or too small."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest

from attnlab.analysis import restore
from attnlab.tasks import lengths as lengths_lib
from attnlab.tasks import tfds_builder
from attnlab.train import config as config_lib
from attnlab.train import compilation
from attnlab.train import evaluate as evaluate_lib
from attnlab.train import loop, optim, parallel, step
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
  tx, _ = optim.make_optimizer(config.optimizer, config.num_steps)
  return state_lib.create(setup.model, tx, jax.random.PRNGKey(3), task_model.dummy_inputs(task))


def test_metrics_are_those_of_the_read_examples(data_dir):
  root, config, task = data_dir
  config.eval_data_dir, config.eval_batches = root, 2
  n = config.train_min_length
  state = _state(config, task)
  # Reference: the examples read straight from tfds, one eval_step per batch, averaged on the host.
  loss_fn = step.task_loss(task.output_kind)
  by_hand = [jax.device_get(step.eval_step(state, jax.tree_util.tree_map(np.asarray, b), loss_fn))
             for b in tfds_builder.eval_batches(root, task, n, config.batch_size, seed=SEED,
                                                num_batches=2)]
  expected = {k: np.mean([m[k] for m in by_hand]) for k in by_hand[0]}
  single = evaluate_lib.from_config(config, task, None, [n], None)
  assert single.sets[n]["inputs"].shape == (2, config.batch_size, n)
  mesh = parallel.make_mesh()
  sharded = evaluate_lib.from_config(config, task, mesh, [n], None)
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


def test_twenty_lengths_compile_one_program_per_bucket():
  config = helpers.tiny_config("lstm", "parity", length_buckets="pow2")
  task = config_lib.build(config).task
  state = _state(config, task)
  lengths = list(range(3, 9)) + list(range(50, 64))  # 20 lengths, buckets 8 and 64
  buckets = lengths_lib.resolve_buckets("pow2", lengths, task.pads)
  evaluation = evaluate_lib.Evaluation(task, batch_size=8, num_batches=2, seed=SEED,
                                       buckets=buckets)
  exact = evaluate_lib.Evaluation(task, batch_size=8, num_batches=2, seed=SEED)
  jax.block_until_ready(jax.random.key(0))  # eager helpers compiled before counting
  with compilation.Compilations() as counted:
    assert evaluation.compile(state, lengths) == 2
    record = evaluate_lib.evaluate(evaluation, state, lengths, step=0)
  assert counted.requests <= 2, counted
  assert set(record["lengths"]) == {str(n) for n in lengths}
  # The same examples as without buckets (a few lengths: one compile each).
  for n in (3, 8, 50):
    want = parallel.host_scalars(exact(state, n))
    for k, v in want.items():
      np.testing.assert_allclose(record["lengths"][str(n)][k], v, rtol=1e-5, atol=1e-6)


def test_sets_are_padded_to_their_bucket(data_dir):
  root, config, task = data_dir
  n = config.train_min_length
  sets = evaluate_lib.read_sets(root, task, [n], batch_size=config.batch_size, num_batches=2,
                                seed=SEED)
  padded = evaluate_lib.pad_batches(sets[n], n, 2 * n, task.output_kind)
  assert padded["inputs"].shape == (2, config.batch_size, 2 * n)
  assert not padded["mask"][:, :, n:].any() and (padded["lengths"] == n).all()
  state = _state(config, task)
  plain = evaluate_lib.Evaluation(task, batch_size=config.batch_size, num_batches=2, seed=SEED,
                                  sets=sets)
  bucketed = evaluate_lib.Evaluation(task, batch_size=config.batch_size, num_batches=2, seed=SEED,
                                     sets=sets, buckets=(2 * n,))
  want, got = (parallel.host_scalars(e(state, n)) for e in (plain, bucketed))
  for k, v in want.items():
    np.testing.assert_allclose(got[k], v, rtol=1e-5, atol=1e-6, err_msg=k)
