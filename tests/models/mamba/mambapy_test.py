"""The Mamba block equals mambapy's (a pure-PyTorch port of the reference mamba_simple.py), weight
for weight: outputs and every gradient, float32 here against float64 there."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models.mamba.block import MambaBlock
from tests.models.mamba import block_cases

torch = pytest.importorskip("torch")
mambapy = pytest.importorskip("mambapy.mamba")

B, L, D, P = 2, 11, 8, 4


def _torch_block(params):
  """mambapy's MambaBlock (sequential selective scan) in float64 with our parameters; returns it
  and a map from our parameter names to (its tensor, our array -> its layout)."""
  block = mambapy.MambaBlock(mambapy.MambaConfig(d_model=D, n_layers=1, d_state=P, pscan=False))
  block = block.double()
  layout = {
      "in_proj": (block.in_proj.weight, lambda w: w.T),
      "conv_kernel": (block.conv1d.weight, lambda w: w.T[:, None, :]),  # [H, 1, d_conv]
      "conv_bias": (block.conv1d.bias, lambda w: w),
      "x_proj": (block.x_proj.weight, lambda w: w.T),
      "dt_proj": (block.dt_proj.weight, lambda w: w.T),
      "dt_bias": (block.dt_proj.bias, lambda w: w),
      "A_log": (block.A_log, lambda w: w),
      "D": (block.D, lambda w: w),
      "out_proj": (block.out_proj.weight, lambda w: w.T),
  }
  assert len(layout) == len(params)
  with torch.no_grad():
    for name, (tensor, to_torch) in layout.items():
      tensor.copy_(torch.tensor(to_torch(np.asarray(params[name], np.float64))))
  return block, layout


def test_outputs_and_gradients_equal_mambapy():
  kx, kp, kb = jax.random.split(jax.random.PRNGKey(0), 3)
  x = jax.random.normal(kx, (B, L, D))
  params = jax.jit(MambaBlock(d_state=P).init)(kp, x)
  # Non-trivial values where the initialisation is constant.
  params["params"]["D"] = jax.random.normal(kb, (2 * D,))
  w = np.cos(np.arange(B * L * D)).reshape(B, L, D)

  def loss(params, x):
    y = MambaBlock(d_state=P).apply(params, x)[0]
    return jnp.sum(y * w), y

  (_, y), (grads, dx) = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(params, x)

  block, layout = _torch_block(params["params"])
  x_t = torch.tensor(np.asarray(x, np.float64), requires_grad=True)
  y_t = block(x_t)
  (y_t * torch.tensor(w)).sum().backward()
  block_cases.close(y, y_t.detach().numpy())
  block_cases.close(dx, x_t.grad.numpy())
  for name, (tensor, to_torch) in layout.items():
    block_cases.close(to_torch(np.asarray(grads["params"][name])), tensor.grad.numpy())
