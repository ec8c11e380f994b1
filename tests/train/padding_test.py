"""Length buckets change nothing: on a padded batch every model family computes what it computes on
the unpadded batch (outputs at valid positions, loss, metrics, gradients), padded tokens do not
matter, and a batch of mixed lengths equals the batches of each length."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models import task_model
from attnlab.train import config as config_lib
from attnlab.train import step as step_lib
from attnlab.train.state import TrainState
from tests.train import helpers

N, P = 13, 16  # a length inside its bucket; rows of the mixed batch also fill it exactly
MIXED = (5, N, P, 9)
B = len(MIXED)

# (registered model, task, config overrides): every family, position kind and MoE.
CASES = [
    ("rnn", "parity", {}), ("rnn_relu", "parity", {}), ("lstm", "reverse_string", {}),
    ("gru", "parity", {}), ("mingru", "reverse_string", {}), ("minlstm", "parity", {}),
    ("lru", "reverse_string", {}),
    ("transformer", "parity", {"model.position": "none"}),
    ("transformer", "reverse_string", {"model.position": "sinusoidal"}),
    ("transformer", "parity", {"model.position": "learned"}),
    ("transformer", "reverse_string", {"model.position": "rope"}),
    ("transformer", "parity", {"model.position": "alibi"}),
    ("transformer", "reverse_string", {"model.moe_experts": 4, "model.moe_top_k": 2,
                                       "model.moe_capacity_factor": 0.5}),
    ("decoder", "parity", {"model.position": "rope"}),
    ("decoder", "reverse_string", {"model.moe_experts": 4, "model.moe_capacity_factor": 0.5}),
    ("encoder_decoder", "reverse_string", {}),
    ("linear_attention", "parity", {}), ("retnet", "reverse_string", {}), ("gla", "parity", {}),
    ("mamba", "reverse_string", {}), ("hawk", "parity", {}), ("swa", "reverse_string", {}),
]


def _loss_fn(setup):
  """(params, jitted value_and_grad of the training loss, with the model's outputs as aux): the
  outputs come from the loss's own forward pass (one forward per compiled program)."""
  model = setup.model
  params = jax.jit(model.init)(jax.random.PRNGKey(0), task_model.dummy_inputs(setup.task))["params"]
  state = TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=None,
                     nonfinite_step=jnp.zeros((), jnp.int32), apply_fn=model.apply, tx=None)
  loss_fn = step_lib.task_loss(setup.task.output_kind)

  def loss(p, batch):
    out, aux = step_lib._forward(p, state, batch, jax.random.PRNGKey(1), True)
    value, metrics = step_lib._objective(loss_fn, out, aux, batch)
    return value, (metrics, out)
  return params, jax.jit(jax.value_and_grad(loss, has_aux=True))


def _close(a, b, what):
  jax.tree_util.tree_map(
      lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-5,
                                              err_msg=what), a, b)


@pytest.mark.parametrize("name, task, overrides", CASES)
def test_padded_batches_compute_what_unpadded_ones_do(name, task, overrides):
  config = helpers.tiny_config(name, task, train_min_length=P, train_max_length=P,
                               eval_lengths=[P], **overrides)
  setup = config_lib.build(config)
  params, grad_fn = _loss_fn(setup)
  per_token = setup.task.output_kind == "per_token"
  rng = jax.random.key(7)

  plain = setup.task.sample(rng, B, N)
  padded = setup.task.sample_padded(rng, B, N, P)
  (loss0, (metrics0, out0)), grads0 = grad_fn(params, plain)
  (loss1, (metrics1, out1)), grads1 = grad_fn(params, padded)
  _close(loss1, loss0, "loss")
  _close(metrics1, metrics0, "metrics")
  _close(grads1, grads0, "gradients")
  _close(out1[:, :N] if per_token else out1, out0, "outputs at valid positions")

  # Padded tokens do not matter: overwrite them with other tokens.
  noise = jax.random.randint(jax.random.key(8), padded["inputs"].shape, 0, setup.task.vocab_size)
  valid = jnp.arange(P)[None, :] < padded["lengths"][:, None]
  scrambled = {**padded, "inputs": jnp.where(valid, padded["inputs"], noise)}
  (loss2, (_, out2)), grads2 = grad_fn(params, scrambled)
  _close((loss2, grads2), (loss1, grads1), "changed padding")

  # Mixed lengths: row b equals row b of the batch padded uniformly to its length (the same
  # compiled program), which equals the unpadded batch (above). Not for MoE: its tokens compete
  # for expert capacity across the whole batch, so each row's routing depends on the others.
  if "model.moe_experts" in overrides:
    return
  mixed = setup.task.sample_padded(rng, B, jnp.array(MIXED), P)
  _, (_, out_mixed) = grad_fn(params, mixed)[0]
  for b, n in enumerate(MIXED):
    _, (_, out_n) = grad_fn(params, setup.task.sample_padded(rng, B, n, P))[0]
    want = out_n[b, :n] if per_token else out_n[b]
    _close(out_mixed[b, :n] if per_token else out_mixed[b], want, f"mixed row {b} (length {n})")
