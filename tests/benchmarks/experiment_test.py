"""The experiment benchmark: its PyTorch models are attnlab's models (same parameters, same logits)
and its records carry what the docs read (no timing asserted)."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest

from benchmarks import experiment
from attnlab import configs
from attnlab.models import task_model
from attnlab.train import config as config_lib
from tests.benchmarks import torch_layout

torch = pytest.importorskip("torch")

# The two Transformers (causal per-token, bidirectional sequence output), an RNN (the three
# torch.nn RNNs share their parameter names with attnlab's), and a regression on feature inputs
# (the adding problem: a Linear input projection, one output).
CASES = [("mqar", "decoder"), ("distance", "transformer"), ("noise", "lstm"), ("adding", "gru")]


def _config(exp, name):
  if exp in experiment.EXPERIMENTS:
    return experiment.load_config(exp, name, quick=True)
  path = os.path.join(os.path.dirname(__file__), "..", "..", "experiments", f"{exp}.py")
  return configs.load_config_file(f"{path}:model={name},smoke")


@pytest.mark.parametrize("exp, name", CASES)
def test_the_torch_model_is_the_attnlab_model(exp, name):
  config = _config(exp, name)
  setup = config_lib.build(config)
  batch = experiment.fixed_batch(setup, config)
  # Random parameters of the model's shapes (no init to compile; norms and biases non-trivial).
  rng = np.random.default_rng(0)
  params = jax.tree_util.tree_map(lambda s: 0.3 * rng.standard_normal(s.shape, np.float32),
                                  task_model.abstract_params(setup.model, setup.task))
  module = experiment.torch_model(torch, setup)
  assert experiment.param_count(module) == experiment.param_count(params)
  assert experiment.param_count(params) == setup.param_counts["total"]
  module.load_state_dict({k: torch.from_numpy(v) for k, v in
                          torch_layout.to_torch(params, name).items()}, strict=True)
  want = jax.jit(setup.model.apply)({"params": params}, batch["inputs"])
  with torch.no_grad():
    got = module(experiment.torch_inputs(torch, setup.task, batch["inputs"])).numpy()
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_main_writes_a_record_per_model_and_impl(tmp_path, capsys):
  path = tmp_path / "e.json"
  threads = torch.get_num_threads()
  try:
    experiment.main(["--quick", "--experiments=length_generalization", "--models=rnn",
                     "--repeats=1", "--torch_threads=1"], str(path))
  finally:
    torch.set_num_threads(threads)
  records = json.loads(path.read_text())
  assert {(r["model"], r["impl"]) for r in records} == {
      ("rnn", "attnlab"), ("rnn", "torch")}
  for r in records:
    assert r["experiment"] == "length_generalization" and r["median_s"] > 0 and r["x_torch"] > 0
    twin = next(o for o in records if o["model"] == r["model"] and o["impl"] != r["impl"])
    assert (r["params"], r["d_model"], r["batch"], r["length"]) == (
        twin["params"], twin["d_model"], twin["batch"], twin["length"])
  assert "x_torch" in capsys.readouterr().out


def test_without_torch_only_attnlab_rows(capsys):
  records = experiment.main(["--quick", "--experiments=length_generalization", "--models=rnn",
                             "--repeats=1", "--no_torch"], None)
  assert [(r["model"], r["impl"]) for r in records] == [("rnn", "attnlab")]
  assert "x_torch" not in records[0]
  assert "PyTorch rows skipped" in capsys.readouterr().out


def test_unknown_names_are_refused():
  with pytest.raises(SystemExit, match=r"--models='mamba'; allowed: \['decoder', 'gru'"):
    experiment.main(["--models=mamba"], None)
  with pytest.raises(SystemExit, match=r"--experiments='copy'"):
    experiment.main(["--experiments=copy"], None)
