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
  assert [(r["step"], r["split"]) for r in records] == [(2, "val")]  # sampled from val_seed
  n = str(config.train_min_length)
  assert summary["final_eval"]["lengths"][n] != records[-1]["lengths"][n]
  # Checkpoint evaluation of the run reads the same set and reproduces the test evaluation.
  again = restore.evaluate_lengths(restore.load_run(str(tmp_path)), [config.train_min_length])
  for k, v in summary["final_eval"]["lengths"][n].items():
    np.testing.assert_allclose(again["lengths"][n][k], v, rtol=1e-5)


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


def _by_hand(state, task, seed, n, batch_size, num_batches):
  """Mean metrics of eval_step over the batches sampled from ``seed``, one call per batch."""
  from attnlab.train import data as data_lib  # pylint: disable=import-outside-toplevel
  loss_fn = step.task_loss(task.output_kind)
  key = jax.random.PRNGKey(seed)
  per_batch = [jax.device_get(step.eval_step(state, data_lib.eval_batch(task, key, batch_size, i,
                                                                        None, n), loss_fn))
               for i in range(num_batches)]
  return {k: np.mean([m[k] for m in per_batch]) for k in per_batch[0]}


def test_validation_and_test_batches_share_programs_not_examples():
  config = helpers.tiny_config("lstm", "copy", eval_batches=2, val_seed=77)
  task = config_lib.build(config).task
  state = _state(config, task)
  n = config.train_min_length
  val, test = evaluate_lib.splits(config, task, None, [n], None)
  assert (val.seed, test.seed) == (77, SEED) and val.sets is None and test.sets is None
  jax.block_until_ready(jax.random.key(0))
  with compilation.Compilations() as counted:
    assert val.compile(state, [n]) == 1
    assert test.compile(state, [n]) == 1  # the validation's program
    got = {s: parallel.host_scalars(e(state, n)) for s, e in (("val", val), ("test", test))}
  assert counted.requests <= 1, counted
  for split, seed in (("val", 77), ("test", SEED)):
    want = _by_hand(state, task, seed, n, config.batch_size, 2)
    for k, v in want.items():
      np.testing.assert_allclose(got[split][k], v, rtol=1e-5, atol=1e-6, err_msg=f"{split} {k}")
  assert got["val"]["loss"] != got["test"]["loss"]


def test_validation_is_sampled_when_the_test_is_read_from_sets(data_dir):
  root, config, task = data_dir
  config.eval_data_dir = root
  val, test = evaluate_lib.splits(config, task, None, [config.train_min_length], None)
  assert test.sets is not None and val.sets is None and val.seed == config.val_seed
  with pytest.raises(ValueError, match="split='train'"):
    evaluate_lib.from_config(config, task, None, [8], None, split="train")


def test_flat_metrics_per_split_and_length():
  record = {"step": 5, "lengths": {"16": {"accuracy": 0.5, "loss": 2.0},
                                   "8": {"accuracy": 1.0, "loss": 1.0}}}
  assert evaluate_lib.flat_metrics(record, "val_", ["accuracy"]) == {
      "val_accuracy": 0.75, "val_loss": 1.5, "val_accuracy@8": 1.0, "val_accuracy@16": 0.5}
  assert list(evaluate_lib.flat_metrics(record, "test_", ["loss", "mse"])) == [
      "test_accuracy", "test_loss", "test_loss@8", "test_loss@16"]
  assert evaluate_lib.flat_metrics(None, "test_", ["accuracy"]) == {}
