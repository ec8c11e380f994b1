"""Data parallelism: 4-device jit and pmap equal one device; two scripts/train.py processes
(jax.distributed) equal one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from tests.train import helpers

STEPS = 3
TOL = 1e-5


def _config(**overrides):
  return helpers.tiny_config("lstm", "copy", batch_size=8, **overrides)


@pytest.fixture(scope="module")
def one_device():
  return helpers.train_steps(_config(), "jit", jax.devices()[:1], STEPS)


@pytest.fixture(scope="module")
def four_devices():
  assert jax.device_count() == 4
  return helpers.train_steps(_config(), "jit", None, STEPS)


def _assert_same(a, b):
  np.testing.assert_allclose(a[0], b[0], rtol=TOL, atol=TOL)
  jax.tree_util.tree_map(lambda x, y: np.testing.assert_allclose(x, y, rtol=TOL, atol=TOL),
                         a[1], b[1])


def test_sharded_jit_equals_one_device(one_device, four_devices):
  _assert_same(one_device, four_devices)
  assert one_device[0][-1] != one_device[0][0]  # it did train


def test_pmap_equals_one_device(one_device):
  _assert_same(one_device, helpers.train_steps(_config(parallelism="pmap"), "pmap", None, STEPS))


def test_grad_accumulation_equals_full_batch(one_device):
  # copy's answer mask has the same count in every example, so micro-batch means average exactly.
  accum = helpers.train_steps(_config(**{"optimizer.grad_accum_steps": 2}), "jit", None, STEPS)
  _assert_same(one_device, accum)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _command(script, devices, *args):
  """``scripts/SCRIPT *args`` as a user starts it, on ``devices`` forced CPU devices."""
  env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
         "JAX_PLATFORMS": "cpu"}
  return subprocess.Popen([sys.executable, os.path.join("scripts", script), *args], env=env,
                          cwd=helpers.REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)


def _finish(procs, timeout=300):
  outputs = []
  try:
    for p in procs:
      out, _ = p.communicate(timeout=timeout)
      outputs.append(out)
  finally:
    for p in procs:  # a missing peer would hang until JAX's init timeout: never wait for it
      if p.poll() is None:
        p.kill()
        p.wait()
  for p, out in zip(procs, outputs):
    assert p.returncode == 0, out[-3000:]
  return outputs


def _last_record(workdir, name):
  with open(os.path.join(workdir, name)) as f:
    return json.loads(f.read().splitlines()[-1])


def test_two_processes_equal_one_process(tmp_path):
  """The README's multi-host command: 2 scripts/train.py processes x 2 CPU devices train as one
  process on 4 devices does, and scripts/evaluate.py scores the run they saved."""
  config = "--config=experiments/base.py:model=gru,task=copy,smoke"
  multi, single = str(tmp_path / "multi"), str(tmp_path / "single")
  address = f"127.0.0.1:{_free_port()}"
  _finish([_command("train.py", 2, config, f"--workdir={multi}", f"--coordinator_address={address}",
                    "--num_processes=2", f"--process_id={i}") for i in range(2)]
          + [_command("train.py", 4, config, f"--workdir={single}")])
  got, want = _last_record(multi, "metrics.jsonl"), _last_record(single, "metrics.jsonl")
  assert got["step"] == want["step"] == 20
  np.testing.assert_allclose(got["loss"], want["loss"], rtol=TOL, atol=TOL)

  _finish([_command("evaluate.py", 4, f"--workdir={multi}", f"--output={tmp_path / 'eval.json'}")])
  with open(tmp_path / "eval.json") as f:
    scored = json.load(f)
  assert scored["step"] == 20
  with open(os.path.join(single, "summary.json")) as f:
    final = json.load(f)["final_eval"]  # the test evaluation, as scripts/evaluate.py scores
  for length, metrics in final["lengths"].items():
    for k, v in metrics.items():
      np.testing.assert_allclose(scored["lengths"][length][k], v, rtol=TOL, atol=TOL)


def test_length_buckets_train_exactly_as_exact_lengths():
  # Length 3 padded to bucket 8: the same examples, the same model computation (jit and pmap).
  exact = helpers.tiny_config("lstm", "parity", train_min_length=3, train_max_length=3,
                              length_buckets="off")
  padded = helpers.tiny_config("lstm", "parity", train_min_length=3, train_max_length=3,
                               length_buckets="8")
  want, want_params = helpers.train_steps(exact, "jit")
  for parallelism in ("jit", "pmap"):
    got, got_params = helpers.train_steps(padded, parallelism)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5),
                           got_params, want_params)
