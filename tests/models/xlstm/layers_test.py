"""The sLSTM and mLSTM layers beyond tests/models/mixers_test.py's contract checks: fast ==
reference from an initial state (outputs, states and gradients, the state's included, with
lengths), decoding in pieces across chunk boundaries, bf16 compute; the sLSTM without its
convolution."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from attnlab.models.xlstm.mlstm_layer import MLSTMLayer
from attnlab.models.xlstm.slstm import SLSTMLayer
from tests.models import mixer_checks

B, L, D = 2, 12, 8
LAYERS = {"slstm": SLSTMLayer(num_heads=2), "mlstm": MLSTMLayer(num_heads=2, chunk=5)}


@pytest.fixture(scope="module", params=sorted(LAYERS))
def setup(request):
  module = LAYERS[request.param]
  x = jax.random.normal(jax.random.PRNGKey(0), (B, L, D))
  params = jax.jit(module.init)(jax.random.PRNGKey(1), x)
  p = params["params"]  # away from the constant initialisations, so that every path matters
  for i, name in enumerate(("recurrent", "igate_kernel", "fgate_kernel")):
    if name in p:
      p[name] = 0.3 * jax.random.normal(jax.random.PRNGKey(10 + i), p[name].shape)
  lengths = jnp.array([L, 7], jnp.int32)
  state = mixer_checks.random_state(module, params, x)
  reference = mixer_checks.check_fast_equals_reference(module, params, x, lengths, state)
  return module, x, params, lengths, state, reference


def test_decoding_in_pieces_across_chunks(setup):
  module, x, params = setup[:3]
  mixer_checks.check_decoding(module, params, x, [5, 1, 6])


def test_bfloat16_compute(setup):
  module, x, params, lengths, state, reference = setup
  mixer_checks.check_bf16(module, params, x, lengths, state, reference)


def test_slstm_without_convolution():
  module = SLSTMLayer(num_heads=2, d_conv=0)
  x = jax.random.normal(jax.random.PRNGKey(2), (B, L, D))
  params = jax.jit(module.init)(jax.random.PRNGKey(3), x)
  assert "conv_kernel" not in params["params"]
  mixer_checks.check_fast_equals_reference(module, params, x, jnp.array([L, 5]), None)
  mixer_checks.check_state_size(module, params, x)


@pytest.mark.parametrize("module, x, message", [
    (SLSTMLayer(num_heads=3), jnp.zeros((1, 3, 8)), r"num_heads=3; must divide d_model=8"),
    (SLSTMLayer(impl="cuda"), jnp.zeros((1, 3, 8)),
     r"impl='cuda'; allowed: \('fast', 'reference'\)"),
    (MLSTMLayer(num_heads=3), jnp.zeros((1, 3, 8)), r"num_heads=3; must divide the inner width"),
    (MLSTMLayer(qkv_block=3), jnp.zeros((1, 3, 8)), r"qkv_block=3; must divide the inner width"),
    (MLSTMLayer(), jnp.zeros((3, 8)), r"must be rank 3"),
])
def test_bad_inputs_before_compiling(module, x, message):
  with pytest.raises(ValueError, match=message):
    module.init(jax.random.PRNGKey(0), x)
