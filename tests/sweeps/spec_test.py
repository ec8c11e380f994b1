from __future__ import annotations

import pytest

from attnlab.sweeps import spec


def test_grid_is_the_ordered_product():
  trials = spec.grid(model__name=["rnn", "lstm"], seed=[0, 1])
  assert trials == [{"model.name": "rnn", "seed": 0}, {"model.name": "rnn", "seed": 1},
                    {"model.name": "lstm", "seed": 0}, {"model.name": "lstm", "seed": 1}]
  with pytest.raises(ValueError, match="seed"):
    spec.grid(seed=[])


def test_trial_names_readable_and_unique():
  trials = spec.make_trials([{"model.name": "lstm", "task.distance": 16, "seed": 0},
                             {"model.name": "lstm", "task.distance": 16, "seed": 0},
                             {"task.noise_rate": 0.25, "x": "a/b"}])
  assert [t.name for t in trials] == ["lstm-distance16-seed0", "lstm-distance16-seed0-1",
                                      "noise_rate0.25-xa_b"]


def test_override_flags():
  assert spec.override_flags({"model.name": "gru", "seed": 3, "optimizer.learning_rate": 0.001,
                              "flag": True}) == [
      "--config.model.name=gru", "--config.seed=3", "--config.optimizer.learning_rate=0.001",
      "--config.flag=True"]


@pytest.mark.parametrize("sweep, match", [
    ([], "non-empty list"),
    ({"seed": 0}, "non-empty list"),
    ([{"seed": [0, 1]}], "not a scalar"),
    (["seed=0"], "dict of dotted overrides"),
])
def test_bad_sweeps(sweep, match):
  with pytest.raises(ValueError, match=match):
    spec.make_trials(sweep)


def test_file_without_grid(tmp_path):
  path = tmp_path / "single.py"
  path.write_text("def get_config(arg=None):\n  return None\n")
  with pytest.raises(ValueError, match="defines no get_sweep"):
    spec.load_trials(f"{path}:smoke")
  with pytest.raises(ValueError, match="does not exist"):
    spec.load_trials(str(tmp_path / "missing.py"))


def test_arg_keys_extend_the_config_argument():
  overrides = {"arg.task": "parity", "model.name": "lstm", "arg.length": 64, "seed": 0}
  assert spec.trial_name(overrides) == "parity-lstm-length64-seed0"
  assert spec.override_flags(overrides) == ["--config.model.name=lstm", "--config.seed=0"]
  assert spec.trial_config("e.py:smoke", overrides) == "e.py:smoke,task=parity,length=64"
  assert spec.trial_config("e.py", overrides) == "e.py:task=parity,length=64"
  assert spec.trial_config("e.py", {"seed": 1}) == "e.py"


def test_grid_with_variants_adds_learning_rates_lstm_forget_biases_and_decoder_convs():
  size = {"lrs": (1e-3, 3e-3), "variants": [("lstm", "forget_bias", (1.0,))]}
  trials = spec.grid_with_variants(size, arg__model=["rnn", "lstm"], seed=[0])
  assert trials == [
      {"arg.model": "rnn", "optimizer.learning_rate": 1e-3, "seed": 0},
      {"arg.model": "rnn", "optimizer.learning_rate": 3e-3, "seed": 0},
      {"arg.model": "lstm", "optimizer.learning_rate": 1e-3, "seed": 0},
      {"arg.model": "lstm", "optimizer.learning_rate": 3e-3, "seed": 0},
      {"arg.model": "lstm", "model.forget_bias": 1.0, "optimizer.learning_rate": 1e-3, "seed": 0},
      {"arg.model": "lstm", "model.forget_bias": 1.0, "optimizer.learning_rate": 3e-3, "seed": 0}]
  assert spec.trial_name(trials[-1]) == "lstm-forget_bias1-learning_rate0.003-seed0"
  convs = spec.grid_with_variants({"variants": [("decoder", "conv_width", (4,))]},
                                  arg__model=["decoder", "gru"], seed=[0])
  assert convs[-1] == {"arg.model": "decoder", "model.conv_width": 4, "seed": 0}
  assert len(convs) == 3 and spec.trial_name(convs[-1]) == "decoder-conv_width4-seed0"
  assert spec.grid_with_variants({}, arg__model=["rnn"], seed=[0, 1]) == spec.grid(
      arg__model=["rnn"], seed=[0, 1])


def test_grid_with_variants_repeats_a_model_with_any_of_its_fields():
  size = {"variants": [("lstm", "block", ("residual",)), ("gru", "num_layers", (2, 3))]}
  trials = spec.grid_with_variants(size, arg__model=["lstm", "gru"], seed=[0])
  assert trials == [
      {"arg.model": "lstm", "seed": 0}, {"arg.model": "gru", "seed": 0},
      {"arg.model": "lstm", "model.block": "residual", "seed": 0},
      {"arg.model": "gru", "model.num_layers": 2, "seed": 0},
      {"arg.model": "gru", "model.num_layers": 3, "seed": 0}]
  assert spec.trial_name(trials[2]) == "lstm-blockresidual-seed0"


def test_seed_major_keeps_each_seeds_trials_in_grid_order():
  trials = spec.grid(arg__model=["rnn", "lstm"], seed=[0, 1]) + [{"arg.model": "gru", "seed": 0}]
  assert spec.seed_major(trials) == [
      {"arg.model": "rnn", "seed": 0}, {"arg.model": "lstm", "seed": 0},
      {"arg.model": "gru", "seed": 0}, {"arg.model": "rnn", "seed": 1},
      {"arg.model": "lstm", "seed": 1}]


def test_report_rows_spell_out_their_variant():
  from attnlab.report import data  # pylint: disable=import-outside-toplevel
  rows = spec.grid_with_variants({"variants": [("lstm", "forget_bias", (1.0,)),
                                               ("lstm", "block", ("residual",))]},
                                 arg__model=["lstm"], seed=[0])
  # A results.csv row has every grid column, empty where the trial has no value.
  keys = {k for r in rows for k in r}
  names = [data.model_of({k: r.get(k, "") for k in keys}) for r in rows]
  assert names == ["lstm", "lstm (forget bias 1)", "lstm (residual)"]


def test_negative_eigenvalues_repeats_the_models_that_have_the_field():
  trials = spec.grid(arg__task=["parity", "copy"], arg__model=["deltanet", "lstm", "mamba2"],
                     seed=[0])
  again = spec.negative_eigenvalues(trials, tasks=("parity",))
  assert again == [
      {"arg.task": "parity", "arg.model": "deltanet", "model.allow_negative_eigenvalues": True,
       "seed": 0},
      {"arg.task": "parity", "arg.model": "mamba2", "model.allow_negative_eigenvalues": True,
       "seed": 0}]
  assert spec.trial_name(again[0]) == "parity-deltanet-allow_negative_eigenvaluesTrue-seed0"
  assert len(spec.negative_eigenvalues(trials)) == 4  # every task
  variants = spec.grid_with_variants({"negative_eigenvalues": True},
                                     arg__model=["gated_deltanet", "gru"], seed=[0])
  assert variants[-1] == {"arg.model": "gated_deltanet", "model.allow_negative_eigenvalues": True,
                          "seed": 0} and len(variants) == 3
