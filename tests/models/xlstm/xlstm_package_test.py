"""The sLSTM and mLSTM layers equal the xlstm package's (NX-AI, pure PyTorch on CPU: the "vanilla"
sLSTM backend, the parallel mLSTM backend and the recurrent mLSTM step), weight for weight:
outputs and every gradient, float32 here against float64 there, and the mLSTM's decoding state
against the package's step-by-step state."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models.xlstm.mlstm_layer import MLSTMLayer
from attnlab.models.xlstm.slstm import SLSTMLayer
from tests.models import mixer_checks

torch = pytest.importorskip("torch")
slstm_layer = pytest.importorskip("xlstm.blocks.slstm.layer")
mlstm_layer = pytest.importorskip("xlstm.blocks.mlstm.layer")

B, L, D, N = 2, 10, 8, 2


def _loss_and_grads(module, params, x):
  (y, state), (grads, dx, _) = mixer_checks.outputs_and_grads(module, read_state=False)(
      params, x, None, None)
  return y, state, grads["params"], dx


def _backward(y_t, x_t):
  (y_t * torch.tensor(np.cos(np.arange(y_t.numel())).reshape(y_t.shape))).sum().backward()
  return x_t.grad.numpy()


def _flat(w):
  return np.asarray(w).reshape(-1)


def _copy(tensor, value):
  with torch.no_grad():
    tensor.copy_(torch.tensor(np.asarray(value, np.float64)))


def test_slstm_layer_equals_the_packages_vanilla_slstm():
  x = jax.random.normal(jax.random.PRNGKey(0), (B, L, D))
  module = SLSTMLayer(num_heads=N)
  params = jax.jit(module.init)(jax.random.PRNGKey(1), x)
  p = params["params"]  # non-zero where the initialisation is constant
  p["recurrent"] = 0.3 * jax.random.normal(jax.random.PRNGKey(2), p["recurrent"].shape)
  p["norm_scale"] = 1 + 0.2 * jax.random.normal(jax.random.PRNGKey(3), p["norm_scale"].shape)
  y, _, grads, dx = _loss_and_grads(module, params, x)

  config = slstm_layer.sLSTMLayerConfig(embedding_dim=D, num_heads=N, conv1d_kernel_size=4,
                                        backend="vanilla", dtype="float32")
  layer = slstm_layer.sLSTMLayer(config).double()
  cell = layer.slstm_cell
  # Its "fgate" module computes the input gate and "igate" the forget gate (sLSTMLayer passes
  # them to the cell in that order); headwise weights are [N, out, in].
  heads = lambda w: np.transpose(np.asarray(w), (0, 2, 1))  # noqa: E731
  moved = {
      "conv_kernel": (layer.conv1d.conv.weight, lambda w: np.asarray(w).T[:, None, :]),
      "conv_bias": (layer.conv1d.conv.bias, np.asarray),
      "gates_conv_i": (layer.fgate.weight, lambda w: heads(w[:, :, 0])),
      "gates_conv_f": (layer.igate.weight, lambda w: heads(w[:, :, 1])),
      "gates_input_z": (layer.zgate.weight, lambda w: heads(w[:, :, 0])),
      "gates_input_o": (layer.ogate.weight, lambda w: heads(w[:, :, 1])),
      "norm_scale": (layer.group_norm.weight, lambda w: np.asarray(w).reshape(-1) - 1.0),
  }
  source = {"gates_conv_i": "gates_conv", "gates_conv_f": "gates_conv",
            "gates_input_z": "gates_input", "gates_input_o": "gates_input"}
  for name, (tensor, layout) in moved.items():
    _copy(tensor, layout(p[source.get(name, name)]))
  recurrent = torch.tensor(np.asarray(p["recurrent"], np.float64))
  _copy(cell._recurrent_kernel_, cell._recurrent_kernel_ext2int(recurrent))
  _copy(cell._bias_, cell._bias_ext2int(torch.tensor(np.asarray(p["bias"], np.float64))))

  x_t = torch.tensor(np.asarray(x, np.float64), requires_grad=True)
  y_t = layer(x_t)
  mixer_checks.close(y, y_t.detach().numpy())
  mixer_checks.close(dx, _backward(y_t, x_t))
  for name, (tensor, layout) in moved.items():
    layout = _flat if name == "norm_scale" else layout  # the scale's offset has no gradient
    mixer_checks.close(layout(grads[source.get(name, name)]), tensor.grad.numpy())
  grad_ext = cell._recurrent_kernel_int2ext(cell._recurrent_kernel_.grad)
  mixer_checks.close(grads["recurrent"], grad_ext.numpy())
  mixer_checks.close(grads["bias"], cell._bias_int2ext(cell._bias_.grad).numpy())


def test_mlstm_layer_equals_the_packages_parallel_and_recurrent_mlstm():
  x = jax.random.normal(jax.random.PRNGKey(4), (B, L, D))
  module = MLSTMLayer(num_heads=N, chunk=4)
  params = jax.jit(module.init)(jax.random.PRNGKey(5), x)
  p = params["params"]
  for i, name in enumerate(("igate_kernel", "fgate_kernel", "norm_scale", "skip")):
    p[name] = (name in ("norm_scale", "skip")) + 0.3 * jax.random.normal(
        jax.random.PRNGKey(10 + i), p[name].shape)
  y, state, grads, dx = _loss_and_grads(module, params, x)

  h = 2 * D
  config = mlstm_layer.mLSTMLayerConfig(embedding_dim=D, num_heads=N, proj_factor=2.0,
                                        conv1d_kernel_size=4, qkv_proj_blocksize=4,
                                        context_length=L, round_proj_up_to_multiple_of=4)
  layer = mlstm_layer.mLSTMLayer(config).double()
  assert layer.config._inner_embedding_dim == h
  cell = layer.mlstm_cell
  blocks = lambda w: np.transpose(np.asarray(w), (0, 2, 1))  # noqa: E731  [J, out, in]
  moved = {
      "up_proj": (layer.proj_up.weight, lambda w: np.asarray(w["kernel"]).T),
      "conv_kernel": (layer.conv1d.conv.weight, lambda w: np.asarray(w).T[:, None, :]),
      "conv_bias": (layer.conv1d.conv.bias, np.asarray),
      "query": (layer.q_proj.weight, blocks),
      "key": (layer.k_proj.weight, blocks),
      "value": (layer.v_proj.weight, blocks),
      "igate_kernel": (cell.igate.weight, lambda w: np.asarray(w).T),
      "igate_bias": (cell.igate.bias, np.asarray),
      "fgate_kernel": (cell.fgate.weight, lambda w: np.asarray(w).T),
      "fgate_bias": (cell.fgate.bias, np.asarray),
      "norm_scale": (cell.outnorm.weight, lambda w: np.asarray(w).reshape(-1) - 1.0),
      "skip": (layer.learnable_skip, np.asarray),
      "down_proj": (layer.proj_down.weight, lambda w: np.asarray(w["kernel"]).T),
  }
  assert len(moved) == len(p)
  for name, (tensor, layout) in moved.items():
    _copy(tensor, layout(p[name]))

  x_t = torch.tensor(np.asarray(x, np.float64), requires_grad=True)
  y_t = layer(x_t)  # parallel_stabilized_simple
  mixer_checks.close(y, y_t.detach().numpy())
  mixer_checks.close(dx, _backward(y_t, x_t))
  for name, (tensor, layout) in moved.items():
    layout = _flat if name == "norm_scale" else layout  # the scale's offset has no gradient
    mixer_checks.close(layout(grads[name]), tensor.grad.numpy(), 1e-5)

  # The package's recurrent step (recurrent_step_stabilized_simple), token by token: the same
  # outputs and, at the end, our decoding state (C, n, m; its n and m carry trailing 1-axes).
  with torch.no_grad():
    mlstm_state, conv_state, ys = None, None, []
    for t in range(L):
      y_step, states = layer.step(x_t[:, t:t + 1], mlstm_state=mlstm_state, conv_state=conv_state)
      mlstm_state, conv_state = states["mlstm_state"], states["conv_state"]
      ys.append(y_step)
  mixer_checks.close(y, torch.cat(ys, 1).numpy())
  c_t, n_t, m_t = (s.numpy() for s in mlstm_state)
  mixer_checks.close(state.cell.c_BNKU, c_t)
  mixer_checks.close(state.cell.n_BNK, n_t[..., 0])
  mixer_checks.close(state.cell.m_BN, m_t[..., 0, 0])
  mixer_checks.close(state.conv_BZH, conv_state[0].numpy()[:, 1:])
