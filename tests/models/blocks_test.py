"""The blocks (models/blocks.py) around every registered model: padding changes nothing before each
sequence's end, the step-by-step reference equals the fast form for the whole model, each block
has the structure it names, and a block a model cannot sit in is a one-line error."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models import blocks, registry, task_model
from attnlab.tasks import registry as task_registry

CASES = [(name, block) for name, e in sorted(registry.MODELS.items()) for block in e.blocks]
B, L = 2, 6
LENGTHS = jnp.array([L, 3])


def _model(name, block, **changes):
  section = {**registry.section(name), "d_model": 8, "num_layers": 2, "block": block, **changes}
  if "num_heads" in section:
    section["num_heads"] = 2
  if name == "hybrid":
    section["layers"] = "gru,attention"
  if "chunk" in section:
    section["chunk"] = 4
  task = task_registry.get_task("copy")
  return task_model.build(section, task, max_length=L), task


@pytest.fixture(scope="module", params=CASES, ids=["-".join(c) for c in CASES])
def case(request):
  name, block = request.param
  model, task = _model(name, block)
  inputs = jax.random.randint(jax.random.PRNGKey(1), (B, L), 0, task.vocab_size)
  params = jax.jit(model.init)(jax.random.PRNGKey(0), inputs)
  return name, block, params, inputs, model


def test_padding_changes_nothing_before_the_end(case):
  name, _, params, inputs, model = case
  apply = jax.jit(model.apply)
  junk = jnp.where(jnp.arange(L)[None] < LENGTHS[:, None], inputs, (inputs + 5) % 8)
  y = apply(params, inputs, LENGTHS)
  y_junk = apply(params, junk, LENGTHS)
  valid = np.asarray(jnp.arange(L)[None] < LENGTHS[:, None])
  np.testing.assert_allclose(np.asarray(y_junk)[valid], np.asarray(y)[valid], rtol=1e-5,
                             atol=1e-5, err_msg=name)
  # The short sequence equals itself run alone.
  alone = apply(params, inputs[1:, :3])
  np.testing.assert_allclose(np.asarray(y)[1, :3], np.asarray(alone)[0], rtol=1e-5, atol=1e-5)


def test_reference_form_equals_the_fast_one(case):
  name, block, params, inputs, model = case
  if not registry.has_field(name, "impl"):
    pytest.skip(f"{name} names its attention kernels in attention_impl")
  reference, _ = _model(name, block, impl="reference")
  np.testing.assert_allclose(jax.jit(reference.apply)(params, inputs, LENGTHS),
                             jax.jit(model.apply)(params, inputs, LENGTHS), rtol=1e-5, atol=1e-5)


def test_each_block_has_its_structure(case):
  name, block, params, _, _ = case
  backbone = params["params"]["backbone"]
  if registry.entry(name).backbone is not None:
    return  # blocks of its own (the Transformers; their tests are in tests/models/transformer)
  residual_parts = {"norm_seq_0", "norm_mlp_0", "mlp_in_0", "mlp_out_0", "norm_final"}
  assert residual_parts <= set(backbone) if block == "residual" else not residual_parts & set(
      backbone), sorted(backbone)


def test_a_model_in_a_block_it_cannot_sit_in_is_a_one_line_error():
  with pytest.raises(ValueError, match=r"^model.block='stacked'; allowed for 'mamba': "
                     r"\('residual',\)$"):
    registry.make_config({**registry.section("mamba"), "block": "stacked"})
  with pytest.raises(ValueError, match=r"^model.block='dense'; allowed for 'lstm': "
                     r"\('stacked', 'residual'\)$"):
    registry.make_config({**registry.section("lstm"), "block": "dense"})
  with pytest.raises(ValueError, match=r"model.d_ff=32 sizes the residual block's MLP"):
    registry.make_config({**registry.section("gru"), "d_ff": 32})
  assert blocks.BLOCKS == ("residual", "stacked")


def test_default_blocks_keep_each_name_in_its_network():
  defaults = {name: e.blocks[0] for name, e in registry.MODELS.items()}
  assert {n for n, b in defaults.items() if b == "stacked"} == {"rnn", "rnn_relu", "lstm", "gru"}
  assert registry.section("lstm")["block"] == "stacked"
  assert registry.section("mingru")["block"] == "residual"
