"""The Mamba-2 block beyond tests/models/mixers_test.py's contract checks (fast == reference from
an initial state with gradients, negative eigenvalues included; decoding in pieces across chunk
boundaries; bf16) and the whole block against a float64 PyTorch loop of mamba_ssm's
mamba2_simple.py equations with the weights moved over (mambapy's mamba2.py imports mamba_ssm's
Triton kernels at the top, so it does not import on CPU)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models import registry
from attnlab.models.mamba2.block import Mamba2Block
from tests.models import mixer_checks

torch = pytest.importorskip("torch")
F = torch.nn.functional

B, L, D = 2, 12, 8
MODULE = Mamba2Block(num_heads=2, d_state=4, chunk=5)


@pytest.fixture(scope="module")
def setup():
  x = jax.random.normal(jax.random.PRNGKey(0), (B, L, D))
  params = jax.jit(MODULE.init)(jax.random.PRNGKey(1), x)
  p = params["params"]  # non-trivial values where the initialisation is constant
  p["D"] = jax.random.normal(jax.random.PRNGKey(2), p["D"].shape)
  p["norm_scale"] = 1 + 0.3 * jax.random.normal(jax.random.PRNGKey(3), p["norm_scale"].shape)
  lengths = jnp.array([L, 7], jnp.int32)
  return x, params, lengths, mixer_checks.random_state(MODULE, params, x)


@pytest.fixture(scope="module")
def reference(setup):
  x, params, lengths, state = setup
  return mixer_checks.check_fast_equals_reference(MODULE, params, x, lengths, state)


def test_fast_equals_reference(reference):
  assert reference is not None


def test_negative_eigenvalues_fast_equals_reference(setup):
  x, params, lengths, state = setup
  mixer_checks.check_fast_equals_reference(MODULE.clone(allow_negative_eigenvalues=True), params,
                                           x, lengths, state)


def test_decoding_in_pieces_across_chunks(setup):
  x, params, _, _ = setup
  mixer_checks.check_decoding(MODULE, params, x, [5, 1, 6])


def test_bfloat16_compute(setup, reference):
  mixer_checks.check_bf16(MODULE, setup[1], setup[0], setup[2], setup[3], reference)


def torch_block(p, x, negative):
  """mamba2_simple.py's forward (its non-fused path) in float64 with a plain step loop for the
  SSD (mamba_chunk_scan_combined's definition), from our parameters in its layouts."""
  h, n, k = 2 * D, MODULE.num_heads, MODULE.d_state
  u = h // n
  t = {
      "in_proj.weight": np.asarray(p["in_proj"]["kernel"]).T,
      "conv1d.weight": np.asarray(p["conv_kernel"]).T[:, None, :],  # [W, 1, d_conv]
      "conv1d.bias": p["conv_bias"], "dt_bias": p["dt_bias"], "A_log": p["A_log"], "D": p["D"],
      "norm.weight": p["norm_scale"], "out_proj.weight": np.asarray(p["out_proj"]["kernel"]).T}
  t = {name: torch.tensor(np.asarray(v, np.float64), requires_grad=True) for name, v in t.items()}
  x = torch.tensor(np.asarray(x, np.float64), requires_grad=True)
  zxbcdt = x @ t["in_proj.weight"].T
  z, xbc, dt = torch.split(zxbcdt, [h, h + 2 * k, n], dim=-1)
  dt = F.softplus(dt + t["dt_bias"])
  xbc = F.conv1d(xbc.transpose(1, 2), t["conv1d.weight"], t["conv1d.bias"], padding=3,
                 groups=h + 2 * k)[..., :L].transpose(1, 2)
  xs, bs, cs = torch.split(F.silu(xbc), [h, k, k], dim=-1)
  xs = xs.reshape(B, L, n, u)
  a = torch.exp(dt * -torch.exp(t["A_log"]))
  a = 2 * a - 1 if negative else a
  s, ys = torch.zeros(B, n, u, k, dtype=torch.float64), []
  for i in range(L):  # mamba_ssm's state layout [head dim, d_state]
    s = a[:, i][..., None, None] * s + (dt[:, i][..., None] * xs[:, i])[..., None] * bs[:, i][
        :, None, None, :]
    ys.append(torch.einsum("bnpk,bk->bnp", s, cs[:, i]) + t["D"][:, None] * xs[:, i])
  y = torch.stack(ys, 1).reshape(B, L, h) * F.silu(z)
  y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + 1e-5) * t["norm.weight"]
  return y @ t["out_proj.weight"].T, t, x


@pytest.mark.parametrize("negative", [False, True])
def test_block_equals_a_float64_torch_loop(setup, negative):
  x, params, _, _ = setup
  module = MODULE.clone(allow_negative_eigenvalues=negative)
  (y, _), (grads, dx, _) = mixer_checks.outputs_and_grads(module, read_state=False)(
      params, x, None, None)
  y_t, t, x_t = torch_block(params["params"], x, negative)
  (y_t * torch.tensor(np.cos(np.arange(y.size)).reshape(y.shape))).sum().backward()
  mixer_checks.close(y, y_t.detach().numpy())
  mixer_checks.close(dx, x_t.grad.numpy())
  g = grads["params"]
  ours = {"in_proj.weight": np.asarray(g["in_proj"]["kernel"]).T,
          "conv1d.weight": np.asarray(g["conv_kernel"]).T[:, None, :],
          "conv1d.bias": g["conv_bias"], "dt_bias": g["dt_bias"], "A_log": g["A_log"],
          "D": g["D"], "norm.weight": g["norm_scale"],
          "out_proj.weight": np.asarray(g["out_proj"]["kernel"]).T}
  for name, grad in ours.items():
    mixer_checks.close(grad, t[name].grad.numpy(), 1e-5)


def test_registry_fields_and_bad_values():
  section = registry.section("mamba2")
  assert section["allow_negative_eigenvalues"] is False and section["init"] == "torch"
  message = r"model.num_heads=3; must divide the inner width expand \* d_model \(16\)"
  with pytest.raises(ValueError, match=message):
    registry.make_config({"name": "mamba2", "d_model": 8, "num_heads": 3})
  with pytest.raises(ValueError, match=r"model.allow_negative_eigenvalues=1"):
    registry.make_config({"name": "mamba2", "allow_negative_eigenvalues": 1})
  with pytest.raises(ValueError, match=r"impl='naive'; allowed: \('fast', 'reference'\)"):
    Mamba2Block(impl="naive").init(jax.random.PRNGKey(0), jnp.zeros((1, 3, 8)))
