"""Model assembly: hand-counted parameters, heads per output kind, width sizing to a target."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from attnlab.train import config as config_lib
from attnlab.models import registry, task_model
from tests.train import helpers


def test_lstm_parameter_count_by_hand():
  setup = config_lib.build(helpers.tiny_config("lstm", "copy"))
  d, v = 8, setup.task.vocab_size
  lstm = 4 * (d * d + d * d + 2 * d)  # PyTorch layout: W_ih, W_hh, b_ih, b_hh for 4 gates
  assert setup.param_counts == {"total": v * d + lstm + d * v + v, "embed": v * d,
                                "backbone": lstm, "head": d * v + v}


@pytest.mark.parametrize("model", ["lstm", "transformer"])
def test_target_params_within_ten_percent(model):
  config = helpers.tiny_config(model, "copy", **{"model.target_params": 20_000,
                                                 "model.num_layers": 2})
  setup = config_lib.build(config)
  assert abs(setup.param_counts["total"] - 20_000) <= 2_000
  if model == "transformer":
    assert setup.model_fields["d_model"] % (2 * config.model.num_heads) == 0


def test_unreachable_target_is_an_error():
  with pytest.raises(ValueError, match="model.target_params=10"):
    config_lib.build(helpers.tiny_config("transformer", "copy", **{"model.target_params": 10}))


def test_registry_names():
  # Exactly these: a name added or dropped must be added or dropped here (and in the README).
  assert set(registry.MODELS) == {
      "rnn", "rnn_relu", "lstm", "gru", "mingru", "minlstm", "lru", "linear_attention", "retnet",
      "gla", "deltanet", "gated_deltanet", "mamba", "mamba2", "hawk", "slstm", "mlstm", "xlstm",
      "hybrid", "transformer", "decoder", "swa", "encoder_decoder"}


@pytest.mark.parametrize("model, task, lead", [
    ("lstm", "copy", (2, 8)),  # per-token logits [B, L, C]
    ("decoder", "parity", (2,)),  # sequence logits from the last position [B, C]
    ("encoder_decoder", "adding", ()),  # regression on feature inputs [B]
])
def test_heads_by_output_kind(model, task, lead):
  setup = config_lib.build(helpers.tiny_config(model, task, train_min_length=8,
                                               train_max_length=8, eval_lengths=[8]))
  inputs = task_model.dummy_inputs(setup.task, batch_size=2, length=8)
  out = jax.eval_shape(lambda: setup.model.init_with_output(jax.random.PRNGKey(0), inputs)[0])
  want = (2,) if task == "adding" else (*lead, setup.task.output_size)
  assert out.shape == want
  assert out.dtype == jnp.float32
  if setup.task.input_kind == "features":
    assert "input_proj" in task_model.abstract_params(setup.model, setup.task)


@pytest.mark.parametrize("name", sorted(registry.MODELS))
def test_every_registered_model_traces(name):
  # Traced only; tests/train/step_test.py trains one model per family.
  setup = config_lib.build(helpers.tiny_config(name, "copy"))
  inputs = task_model.dummy_inputs(setup.task, batch_size=2, length=8)
  out = jax.eval_shape(lambda: setup.model.init_with_output(jax.random.PRNGKey(0), inputs)[0])
  assert out.shape == (2, 8, setup.task.output_size)
  assert setup.param_counts["backbone"] > 0


@pytest.mark.parametrize("shape", ["quadratic", "linear", "stepped", "flat_start", "cubic"])
def test_first_reaching_equals_a_scan(shape):
  """The width search against a scan of every width, for counts the quadratic guess fits well,
  badly (stepped, cubic) or not at all (flat start), at targets below, inside and above range."""
  count = {"quadratic": lambda u: 37 * u * u + 500 * u + 1_000,
           "linear": lambda u: 900 * u + 40,
           "stepped": lambda u: 64 * (u // 5) ** 2 + 3 * u,  # rounded fields, as in Mamba's dt_rank
           "flat_start": lambda u: 5_000 + max(u - 20, 0) ** 2,
           "cubic": lambda u: u ** 3 + 10}[shape]
  top = 300
  calls = []
  counted = lambda u: calls.append(u) or count(u)
  for target in (1, 5_000, 5_001, 20_000, 123_457, 10 ** 9):
    want = next((u for u in range(1, top + 1) if count(u) >= target), top)
    assert task_model.first_reaching(counted, target, top) == want, target
  assert len(calls) < 6 * 30  # a search, not a scan
