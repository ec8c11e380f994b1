"""The experiment benchmark: its PyTorch models are attnlab's models (same parameters, same logits)
and its records carry what the docs read (no timing asserted)."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from benchmarks import experiment
from attnlab.models import task_model
from attnlab.train import config as config_lib

torch = pytest.importorskip("torch")

# The two Transformers (causal per-token, bidirectional sequence output) and an RNN (the three
# torch.nn RNNs share their parameter names with attnlab's).
CASES = [("mqar", "decoder"), ("distance", "transformer"), ("noise", "lstm")]


def _copy_into(module, params, name: str) -> None:
  """attnlab's parameters into the benchmark's torch model, in torch's layout."""
  t = lambda x: torch.from_numpy(np.array(x, np.float32))  # noqa: E731
  state = {"embed.weight": t(params["embed"]["embedding"]),
           "head.weight": t(params["head"]["kernel"]).T, "head.bias": t(params["head"]["bias"])}
  if name in experiment.TRANSFORMERS:
    stack = params["backbone"]["decoder" if name == "decoder" else "encoder"]["stack"]
    d = params["embed"]["embedding"].shape[1]
    for i, block in enumerate(v for k, v in sorted(stack.items()) if k.startswith("block_")):
      pre, att = f"body.layers.{i}.", block["self_attention"]
      state[pre + "self_attn.in_proj_weight"] = torch.cat(
          [t(att[p]["kernel"]).reshape(d, d).T for p in ("query", "key", "value")])
      state[pre + "self_attn.in_proj_bias"] = torch.cat(
          [t(att[p]["bias"]).reshape(d) for p in ("query", "key", "value")])
      state[pre + "self_attn.out_proj.weight"] = t(att["out"]["kernel"]).reshape(d, d).T
      state[pre + "self_attn.out_proj.bias"] = t(att["out"]["bias"])
      for ours, theirs in (("wi", "linear1"), ("wo", "linear2")):
        state[pre + theirs + ".weight"] = t(block["ffn"][ours]["kernel"]).T
        state[pre + theirs + ".bias"] = t(block["ffn"][ours]["bias"])
      for ours, theirs in (("ln_self", "norm1"), ("ln_ffn", "norm2")):
        state[pre + theirs + ".weight"] = t(block[ours]["scale"])
        state[pre + theirs + ".bias"] = t(block[ours]["bias"])
    state["body.norm.weight"] = t(stack["ln_final"]["scale"])
    state["body.norm.bias"] = t(stack["ln_final"]["bias"])
  else:  # attnlab's RNN keeps PyTorch's names and shapes
    state.update({"body." + k: t(v) for k, v in params["backbone"]["rnn"].items()})
  module.load_state_dict(state, strict=True)


@pytest.mark.parametrize("exp, name", CASES)
def test_the_torch_model_is_the_attnlab_model(exp, name):
  config = experiment.load_config(exp, name, quick=True)
  setup = config_lib.build(config)
  batch = experiment.fixed_batch(setup, config)
  # Random parameters of the model's shapes (no init to compile; norms and biases non-trivial).
  rng = np.random.default_rng(0)
  params = jax.tree_util.tree_map(lambda s: 0.3 * rng.standard_normal(s.shape, np.float32),
                                  task_model.abstract_params(setup.model, setup.task))
  module = experiment.torch_model(torch, setup)
  assert experiment.param_count(module) == experiment.param_count(params)
  assert experiment.param_count(params) == setup.param_counts["total"]
  _copy_into(module, params, name)
  want = jax.jit(setup.model.apply)({"params": params}, batch["inputs"])
  with torch.no_grad():
    got = module(torch.from_numpy(np.array(batch["inputs"], np.int64))).numpy()
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
