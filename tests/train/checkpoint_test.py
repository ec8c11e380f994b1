"""Checkpointer: round trips, retention, damaged steps, interrupted saves."""

from __future__ import annotations

import glob
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap

from flax.training import train_state
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from attnlab.train import checkpoint as ckpt

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make_state(seed: int) -> dict:
  """A small TrainState-like pytree: params, adam state after one update, step."""
  k1, k2 = jax.random.split(jax.random.key(seed))
  params = {"dense": {"kernel": jax.random.normal(k1, (16, 64)), "bias": jnp.zeros((64,))},
            "embed": jax.random.normal(k2, (8, 16)).astype(jnp.bfloat16)}
  tx = optax.adam(1e-2)
  opt_state = tx.init(params)
  grads = jax.tree_util.tree_map(jnp.ones_like, params)
  updates, opt_state = tx.update(grads, opt_state, params)
  return {"params": optax.apply_updates(params, updates), "opt_state": opt_state,
          "step": jnp.asarray(seed, jnp.int32)}


def assert_bit_equal(a, b):
  la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
  assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
  for x, y in zip(la, lb):
    x, y = np.asarray(x), np.asarray(y)
    assert x.dtype == y.dtype and x.shape == y.shape
    assert x.tobytes() == y.tobytes()


def save_steps(directory, steps, **kwargs):
  states = {}
  with ckpt.Checkpointer(directory, **kwargs) as c:
    for s in steps:
      states[s] = make_state(s)
      assert c.save(s, states[s], metrics={"accuracy": 0.1 * s})
    c.wait()
  return states


def test_round_trip_bit_exact_dict_and_train_state(tmp_path):
  state = make_state(3)
  ts = train_state.TrainState.create(apply_fn=None, params=state["params"], tx=optax.adam(1e-3))
  with ckpt.Checkpointer(tmp_path / "a") as c:
    c.save(3, state, extra={"history": [[2, True, 0.5]]})
    c.save(4, ts)
    c.wait()
    assert c.steps() == [3, 4]
    assert_bit_equal(c.restore(3, make_state(0)), state)
    restored = c.restore(4, ts)
    assert isinstance(restored, train_state.TrainState)
    assert_bit_equal(restored, ts)
    assert c.metadata(3)["step"] == 3
    assert c.metadata(3)["extra"] == {"history": [[2, True, 0.5]]}
    assert "extra" not in c.metadata(4)
    inspected = c.restore(3, None)  # no model needed: nested dicts of numpy arrays
    assert isinstance(inspected["params"]["embed"], np.ndarray)
    assert_bit_equal(inspected["params"], state["params"])
    assert not c.save(4, ts), "an existing step is never overwritten"
  assert os.path.exists(tmp_path / "a" / "3" / ckpt.SIDECAR)


def test_round_trip_keeps_sharding(tmp_path):
  mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  state = jax.device_put(make_state(1), replicated)
  with ckpt.Checkpointer(tmp_path, async_save=False) as c:
    c.save(1, state)
    restored, step = c.restore_latest(state)
  assert step == 1
  assert_bit_equal(restored, state)
  for leaf in jax.tree_util.tree_leaves(restored):
    assert leaf.sharding.is_equivalent_to(replicated, leaf.ndim)


@pytest.mark.parametrize("mode", ["max", "min"])
def test_keeps_last_k_plus_best(tmp_path, mode):
  accuracy = {1: 0.1, 3: 0.9, 5: 0.2, 7: 0.3, 9: 0.4, 11: 0.5}
  if mode == "min":
    accuracy = {s: 1 - a for s, a in accuracy.items()}
  with ckpt.Checkpointer(tmp_path, keep=2, best_metric="eval/accuracy", best_mode=mode) as c:
    assert c.best_step() is None
    c.save(0, make_state(0))
    assert c.best_step() is None, "a step without the metric is never best"
    for s, a in accuracy.items():
      assert c.save(s, make_state(s), metrics={"eval": {"accuracy": a}, "loss": 1.0})
      assert c.save(s + 1, make_state(s + 1))  # no metric: ranks worst
    c.wait()
    assert c.steps() == [3, 11, 12]
    assert c.best_step() == 3
    assert_bit_equal(c.restore("best", make_state(0)), make_state(3))
    assert_bit_equal(c.restore("latest", make_state(0)), make_state(12))
  with ckpt.Checkpointer(tmp_path, keep=2, best_metric="eval/accuracy", best_mode=mode) as c:
    assert c.best_step() == 3, "best survives a restart"


def _largest(step_dir):
  files = [p for p in glob.glob(f"{step_dir}/state/**/d/*", recursive=True) if os.path.isfile(p)]
  return max(files, key=os.path.getsize)


def _damage(step_dir, how):
  if how == "missing":
    os.remove(_largest(step_dir))
  elif how == "truncated":
    path = _largest(step_dir)
    with open(path, "r+b") as f:
      f.truncate(os.path.getsize(path) // 2)
  elif how == "bitflip":
    # Inside raw array data: orbax alone restores this silently with a wrong value.
    path = _largest(step_dir)
    data = bytearray(open(path, "rb").read())
    data[2 * len(data) // 3] ^= 0x04
    open(path, "wb").write(bytes(data))
  elif how == "missing_metadata":
    os.remove(os.path.join(step_dir, "state", "_METADATA"))
  elif how == "missing_meta_json":
    os.remove(os.path.join(step_dir, "meta", "metadata"))


CAUSES = {"missing": "missing file", "truncated": "truncated", "bitflip": "checksum mismatch",
          "missing_metadata": "_METADATA", "missing_meta_json": "meta/metadata"}


@pytest.mark.parametrize("how,verify", [
    ("missing", True), ("truncated", True), ("bitflip", True), ("missing_metadata", True),
    ("missing_meta_json", True),
    # Without the sidecar orbax itself must raise, and we must still fall back.
    ("missing", False), ("truncated", False), ("missing_metadata", False)])
def test_damaged_latest_falls_back_with_warning(tmp_path, caplog, how, verify):
  states = save_steps(tmp_path / "ck", [1, 2, 3], verify=verify)
  _damage(str(tmp_path / "ck" / "3"), how)
  with caplog.at_level(logging.WARNING):
    with ckpt.Checkpointer(tmp_path / "ck", verify=verify) as c:
      restored, step = c.restore_latest(make_state(0))
      assert step == 2
      assert_bit_equal(restored, states[2])
      assert c.steps() == [1, 2]
  warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
  damaged = [w for w in warnings if "step 3 is damaged" in w]
  assert damaged, warnings
  if verify:
    assert CAUSES[how] in damaged[0], damaged[0]
  # Nothing deleted: the damaged step was moved aside.
  assert len(os.listdir(tmp_path / "ck_damaged")) == 1


def test_explicit_restore_of_damaged_step_raises(tmp_path):
  save_steps(tmp_path, [1, 2])
  _damage(str(tmp_path / "2"), "bitflip")
  with ckpt.Checkpointer(tmp_path) as c:
    with pytest.raises(ValueError, match="step 2 .* damaged.*checksum mismatch"):
      c.restore(2, make_state(0))
    with pytest.raises(ValueError, match="not found"):
      c.restore(7, make_state(0))
    assert c.steps() == [1, 2], "an explicit restore never moves anything"


def test_all_damaged_returns_none(tmp_path):
  save_steps(tmp_path / "ck", [1])
  _damage(str(tmp_path / "ck" / "1"), "missing")
  with ckpt.Checkpointer(tmp_path / "ck") as c:
    assert c.restore_latest(make_state(0)) is None
  with ckpt.Checkpointer(tmp_path / "empty") as c:
    assert c.restore_latest(make_state(0)) is None


def test_leftover_tmp_dir_is_ignored(tmp_path, caplog):
  states = save_steps(tmp_path, [1, 2])
  # What a kill during orbax's write leaves: an uncommitted, partial tmp folder.
  shutil.copytree(tmp_path / "2", tmp_path / f"3{ckpt.TMP_SUFFIX}")
  os.remove(_largest(str(tmp_path / f"3{ckpt.TMP_SUFFIX}")))
  with caplog.at_level(logging.WARNING):
    with ckpt.Checkpointer(tmp_path) as c:
      assert c.steps() == [1, 2]
      restored, step = c.restore_latest(make_state(0))
      assert step == 2
      assert_bit_equal(restored, states[2])
      # A reader (it might be evaluating a live run) never removes a tmp folder...
      assert os.path.isdir(tmp_path / f"3{ckpt.TMP_SUFFIX}")
      # ...a writer does, at its first save; the interrupted step can be saved again.
      assert c.save(3, make_state(3))
      c.wait()
      assert not os.path.exists(tmp_path / f"3{ckpt.TMP_SUFFIX}")
      assert_bit_equal(c.restore(3, make_state(0)), make_state(3))
  assert any("half-written" in r.getMessage() for r in caplog.records)


KILL_CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r}); sys.path.insert(0, {repo!r})
    from attnlab.train import checkpoint as ckpt
    from checkpoint_test import make_state
    original = ckpt.Checkpointer._write_sidecar
    def slow(self):
      original(self)
      if self.latest_step() == 2:  # orbax lists a step from the moment its save starts
        print("in-commit", flush=True)  # data and checksums written, not yet renamed
        time.sleep(120)
    ckpt.Checkpointer._write_sidecar = slow
    c = ckpt.Checkpointer({directory!r})
    c.save(1, make_state(1)); c.wait()
    c.save(2, make_state(2))
    time.sleep(120)
""")


def test_sigkill_during_save_keeps_previous_step(tmp_path):
  code = KILL_CHILD.format(tests=os.path.dirname(__file__), repo=REPO, directory=str(tmp_path))
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
  try:
    line = proc.stdout.readline()
    assert line.strip() == "in-commit", line
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
  finally:
    proc.kill()
  assert os.path.isdir(tmp_path / f"2{ckpt.TMP_SUFFIX}")
  with ckpt.Checkpointer(tmp_path) as c:
    restored, step = c.restore_latest(make_state(0))
  assert step == 1
  assert_bit_equal(restored, make_state(1))


def test_bad_arguments():
  with pytest.raises(ValueError, match="keep"):
    ckpt.Checkpointer("/tmp/unused", keep=0)
  with pytest.raises(ValueError, match="best_mode"):
    ckpt.Checkpointer("/tmp/unused", best_mode="best")
