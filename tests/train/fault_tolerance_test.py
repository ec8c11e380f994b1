"""End to end through scripts/train.py: SIGKILL/SIGTERM resume, damaged checkpoints, NaN, configs.

One module fixture runs these (reference, damaged and nan beside the chain, to save wall time):
  reference: an uninterrupted run;
  chain: the same run SIGKILLed three times at random points, then SIGTERMed, then completed;
  damaged: the reference workdir with its latest checkpoint bit-flipped, started again;
  nan: a run with learning_rate=1e30;
  stop_ref / stop_chain: a run that solves its task and stops early, uninterrupted and SIGKILLed
  after its first solved evaluation, then resumed.
"""

from __future__ import annotations

import glob
import json
import os
import random
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from attnlab.train import checkpoint as ckpt

pytestmark = pytest.mark.slow  # ~8 training subprocesses; ~90 s of CPU in all

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = "experiments/base.py:model=lstm,task=copy,smoke"
NUM_STEPS = 40  # room for 3 kills and a SIGTERM, each a few steps in, on fast or slow machines
# eval only at the end: every run start then compiles the train step only.
# Every checkpoint kept, so a mismatch can be traced to the first differing step.
OVERRIDES = [f"--config.num_steps={NUM_STEPS}", "--config.checkpoint_every=2",
             "--config.eval_every=1000", "--config.log_every=1000", "--config.keep_checkpoints=100"]
TIMEOUT = 240  # per run; a healthy smoke run takes ~15 s on an idle 2-core machine
# Length buckets: lengths 1..12 of parity drawn per step, padded to buckets 8 and 16.
BUCKETED = ("experiments/base.py:model=lstm,task=parity,smoke",
            "--config.train_min_length=1", "--config.train_max_length=12",
            "--config.length_buckets=pow2")
# The adding problem evaluated every 2 steps: the smoke LSTM's validation MSE is at most 0.34 at
# both lengths from step 10 on (0.49 at step 8 when this was written), so with patience 8 it stops
# at step 24, leaving 7 checkpoints between its first solved evaluation and its stop to kill it in.
STOPPING = ("experiments/base.py:model=lstm,task=adding,smoke", "--config.eval_every=2",
            "--config.patience=8", "--config.solve_mse=0.4")
TIMING_SUMMARY = ("wall_s", "eval_s", "compilations", "compile_cache_hits", "compile_s")


def start(workdir, *extra, config=CONFIG):
  log = open(f"{workdir}.log{len(glob.glob(f'{workdir}.log*'))}", "w")
  cmd = [sys.executable, "scripts/train.py", "--config", config, "--workdir", workdir,
         *OVERRIDES, *extra]
  proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
  proc.log_path = log.name
  return proc


def finish(proc):
  try:
    rc = proc.wait(timeout=TIMEOUT)
  except subprocess.TimeoutExpired:
    proc.kill()
    raise
  return rc, open(proc.log_path).read()


def committed_steps(workdir):
  path = os.path.join(workdir, "checkpoints")
  return sorted(int(n) for n in os.listdir(path) if n.isdigit()) if os.path.isdir(path) else []


def interrupt_after_progress(workdir, sig, new_steps, jitter_s=0.0, start_run=None):
  """Starts a run; once it has committed ``new_steps`` more steps, waits ``jitter_s`` and signals.

  Progress is counted in committed steps, not seconds, so the signal lands mid-run however fast
  the machine; the jitter moves it to random points (mid-step, mid-save).
  """
  before = max(committed_steps(workdir), default=0)
  proc = (start_run or start)(workdir)
  deadline = time.time() + TIMEOUT
  while max(committed_steps(workdir), default=0) < before + new_steps:
    if proc.poll() is not None or time.time() > deadline:
      proc.kill()
      pytest.fail(f"run ended or stalled before progress: {open(proc.log_path).read()[-3000:]}")
    time.sleep(0.005)
  time.sleep(jitter_s)
  proc.send_signal(sig)
  rc, log = finish(proc)
  return {"rc": rc, "log": log, "before": before, "after": committed_steps(workdir)}


def final_state(workdir, step=NUM_STEPS):
  with ckpt.Checkpointer(os.path.join(workdir, "checkpoints")) as c:
    return c.restore(step, None)


def assert_bit_equal(a, b):
  assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
    x, y = np.asarray(x), np.asarray(y)
    assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()


def damage_latest(workdir):
  """Flips one bit inside the array data of the latest step (orbax alone would not notice)."""
  step_dir = os.path.join(workdir, "checkpoints", str(max(committed_steps(workdir))))
  data = max(glob.glob(f"{step_dir}/state/**/d/*", recursive=True), key=os.path.getsize)
  raw = bytearray(open(data, "rb").read())
  raw[len(raw) // 2] ^= 0x01
  open(data, "wb").write(bytes(raw))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("ft"))
  ref_dir, chain_dir, nan_dir = (os.path.join(root, n) for n in ("ref", "chain", "nan"))
  bucket_ref, bucket_chain = os.path.join(root, "bucket_ref"), os.path.join(root, "bucket_chain")
  out = {"root": root, "ref_dir": ref_dir, "chain_dir": chain_dir, "nan_dir": nan_dir,
         "bucket_ref": bucket_ref, "bucket_chain": bucket_chain}
  bucketed = lambda workdir: start(workdir, *BUCKETED[1:], config=BUCKETED[0])  # noqa: E731
  stopping = lambda workdir: start(workdir, *STOPPING[1:], config=STOPPING[0])  # noqa: E731
  stop_ref, stop_chain = os.path.join(root, "stop_ref"), os.path.join(root, "stop_chain")
  out.update(stop_ref=stop_ref, stop_chain=stop_chain)
  stop_reference = stopping(stop_ref)
  reference = start(ref_dir)
  nan = start(nan_dir, "--config.optimizer.learning_rate=1e30", "--config.checkpoint_every=1")
  rng = random.Random(0)
  kill = lambda: interrupt_after_progress(  # noqa: E731
      chain_dir, signal.SIGKILL, rng.choice([2, 4]), rng.uniform(0.0, 0.05))
  kills = [kill()]
  out["reference"] = finish(reference)
  assert out["reference"][0] == 0, out["reference"][1][-3000:]
  out["reference_state"] = final_state(ref_dir)
  # The reference again, its latest checkpoint damaged: runs beside the rest of the chain.
  damage_latest(ref_dir)
  damaged = start(ref_dir)
  kills += [kill(), kill()]
  out["kills"] = kills
  out["term"] = interrupt_after_progress(chain_dir, signal.SIGTERM, 2)
  out["resumed"] = finish(start(chain_dir))
  out["nan"] = finish(nan)
  out["damaged"] = finish(damaged)
  bucket_reference = bucketed(bucket_ref)
  out["bucket_kill"] = interrupt_after_progress(bucket_chain, signal.SIGKILL, 4, 0.02,
                                                start_run=bucketed)
  out["bucket_resumed"] = finish(bucketed(bucket_chain))
  out["bucket_reference"] = finish(bucket_reference)
  out["stop_reference"] = finish(stop_reference)
  solved_step = json.load(open(os.path.join(stop_ref, "summary.json")))["solved_step"] or 1
  out["stop_kill"] = interrupt_after_progress(stop_chain, signal.SIGKILL, solved_step,
                                              start_run=stopping)
  out["stop_kill"]["summary"] = os.path.exists(os.path.join(stop_chain, "summary.json"))
  out["stop_resumed"] = finish(stopping(stop_chain))
  return out


def test_sigkill_three_times_then_resume_is_bit_exact(runs):
  for k in runs["kills"]:
    assert k["rc"] == -signal.SIGKILL
  assert "resumed from checkpoint step" in runs["kills"][1]["log"]
  rc, log = runs["resumed"]
  assert rc == 0, log[-3000:]
  chain = final_state(runs["chain_dir"])
  assert int(np.asarray(chain["step"])) == NUM_STEPS
  assert set(chain) >= {"params", "opt_state", "step"}
  if not bit_equal(chain, runs["reference_state"]):
    pytest.fail(f"final states differ; first differing step: {first_divergence(runs)} (both runs "
                "keep every checkpoint; the resumes are in the chain.log* files)")


def test_sigkill_with_length_buckets_resumes_bit_exact(runs):
  assert runs["bucket_kill"]["rc"] == -signal.SIGKILL
  for rc, log in (runs["bucket_reference"], runs["bucket_resumed"]):
    assert rc == 0, log[-3000:]
  assert "length buckets (8, 16)" in runs["bucket_reference"][1]
  assert "resumed from checkpoint step" in runs["bucket_resumed"][1]
  assert_bit_equal(final_state(runs["bucket_chain"]), final_state(runs["bucket_ref"]))


def _outcome(workdir):
  with open(os.path.join(workdir, "summary.json")) as f:
    return {k: v for k, v in json.load(f).items() if k not in TIMING_SUMMARY}


def _lines(path):
  with open(path) as f:
    return f.read().splitlines()


def test_sigkill_after_solved_evaluations_resumes_to_the_same_early_stop(runs):
  rc, log = runs["stop_reference"]
  assert rc == 0, log[-3000:]
  ref = _outcome(runs["stop_ref"])
  assert ref["status"] == "done" and ref["solved_step"] is not None
  assert ref["step"] < NUM_STEPS, "the reference never stopped early: the test proves nothing"
  kill = runs["stop_kill"]
  assert kill["rc"] == -signal.SIGKILL
  assert ref["solved_step"] <= max(kill["after"]) < ref["step"], (kill["after"], ref)
  assert not kill["summary"]  # killed mid-run
  rc, log = runs["stop_resumed"]
  assert rc == 0, log[-3000:]
  resumed = int(log.split("resumed from checkpoint step ")[1].split()[0])
  assert ref["solved_step"] <= resumed < ref["step"]  # it had seen a solved evaluation
  assert _outcome(runs["stop_chain"]) == ref
  assert (_lines(os.path.join(runs["stop_chain"], "eval.jsonl"))
          == _lines(os.path.join(runs["stop_ref"], "eval.jsonl")))
  assert_bit_equal(final_state(runs["stop_chain"], ref["step"]),
                   final_state(runs["stop_ref"], ref["step"]))


def bit_equal(a, b):
  try:
    assert_bit_equal(a, b)
    return True
  except AssertionError:
    return False


def first_divergence(runs):
  """The first step whose saved state differs between the reference and the chain."""
  for step in committed_steps(runs["chain_dir"]):
    if step < NUM_STEPS and not bit_equal(final_state(runs["ref_dir"], step),
                                          final_state(runs["chain_dir"], step)):
      return step
  return NUM_STEPS


def test_sigterm_saves_exits_zero_and_resumes_there(runs):
  term = runs["term"]
  assert term["rc"] == 0, term["log"][-3000:]
  saved = max(term["after"])
  assert saved < NUM_STEPS, "SIGTERM arrived after the run ended; the test proved nothing"
  assert f"SIGTERM received: saved step {saved}, stopping" in term["log"]
  summary = json.load(open(os.path.join(runs["chain_dir"], "summary.json")))
  assert summary["status"] == "done"  # rewritten by the resumed run
  assert f"resumed from checkpoint step {saved}" in runs["resumed"][1]


def test_damaged_latest_resumes_from_previous_good_step(runs):
  rc, log = runs["damaged"]
  assert rc == 0, log[-3000:]
  assert f"Checkpoint step {NUM_STEPS} is damaged" in log
  assert "checksum mismatch" in log
  assert f"resumed from checkpoint step {NUM_STEPS - 2}" in log
  moved = os.listdir(os.path.join(runs["ref_dir"], "checkpoints_damaged"))
  assert len(moved) == 1 and moved[0].startswith(f"{NUM_STEPS}-")
  # Redone from NUM_STEPS - 2, the run ends exactly where the interrupted chain ended.
  assert_bit_equal(final_state(runs["ref_dir"]), final_state(runs["chain_dir"]))


def test_nan_stops_with_step_and_keeps_last_good_checkpoint(runs):
  rc, log = runs["nan"]
  assert rc != 0
  assert "non-finite loss, gradients or parameters at step" in log
  bad_step = int(log.split("non-finite loss, gradients or parameters at step ")[1].split(";")[0])
  summary = json.load(open(os.path.join(runs["nan_dir"], "summary.json")))
  assert summary["status"] == "nan"
  steps = committed_steps(runs["nan_dir"])
  assert steps and max(steps) < bad_step
  state = final_state(runs["nan_dir"], max(steps))
  assert int(np.asarray(state["step"])) == max(steps)
  for leaf in jax.tree_util.tree_leaves(state):
    assert np.all(np.isfinite(np.asarray(leaf, np.float64)))


def test_different_config_is_refused_with_fields(runs):
  from attnlab import configs  # pylint: disable=import-outside-toplevel
  from attnlab.train import loop  # pylint: disable=import-outside-toplevel
  config = configs.load_config_file(os.path.join(REPO, CONFIG))
  config.num_steps, config.checkpoint_every, config.eval_every = NUM_STEPS, 2, 1000
  config.log_every = 1000
  config.seed, config.model.d_model = 1, 32
  with pytest.raises(ValueError) as e:
    loop.train_and_evaluate(config, runs["chain_dir"])
  assert "seed: 0 -> 1" in str(e.value)
  assert "model.d_model: 16 -> 32" in str(e.value)
