"""Data parallelism: 4-device jit and pmap (and two jax.distributed processes) equal one device."""

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


_WORKER = """
import json, sys
import jax
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_default_matmul_precision", "highest")
jax.config.update("jax_disable_most_optimizations", True)
from attnlab.train import parallel
parallel.initialize_distributed(sys.argv[1], 2, int(sys.argv[2]))
from tests.train import helpers, parallel_test
losses, _ = helpers.train_steps(parallel_test._config(), "jit", None, parallel_test.STEPS)
print("LOSSES", json.dumps({"process": jax.process_index(), "devices": jax.device_count(),
                            "losses": losses}), flush=True)
"""


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_equal_one_process(four_devices):
  """2 processes x 2 CPU devices share the global batch of the 4-device single-process run."""
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
         "JAX_PLATFORMS": "cpu", "PYTHONPATH": helpers.REPO}
  address = f"127.0.0.1:{_free_port()}"
  procs = [subprocess.Popen([sys.executable, "-c", _WORKER, address, str(i)], env=env,
                            cwd=helpers.REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True) for i in range(2)]
  outputs = []
  try:
    for p in procs:
      out, _ = p.communicate(timeout=150)
      outputs.append(out)
  finally:
    for p in procs:  # a missing peer would hang until JAX's init timeout: never wait for it
      if p.poll() is None:
        p.kill()
        p.wait()
  for p, out in zip(procs, outputs):
    assert p.returncode == 0, out[-3000:]
  results = [json.loads(line.split("LOSSES", 1)[1]) for out in outputs
             for line in out.splitlines() if line.startswith("LOSSES")]
  assert sorted(r["process"] for r in results) == [0, 1]
  for r in results:
    assert r["devices"] == 4
    np.testing.assert_allclose(r["losses"], four_devices[0], rtol=TOL, atol=TOL)


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
