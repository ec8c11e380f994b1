"""The GatedDeltaNet mixer beyond tests/models/mixers_test.py's contract checks (fast == reference
from an initial state with gradients, decoding in pieces across chunk boundaries, bf16), the whole
layer against a float64 PyTorch loop with its weights moved over, and negative eigenvalues (beta
in (0, 2)) here and on DeltaNet."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models import registry
from attnlab.models.linear_attention.deltanet import DeltaNet
from attnlab.models.linear_attention.gated_deltanet import GatedDeltaNet
from tests.models import mixer_checks

torch = pytest.importorskip("torch")

B, L, D, N = 2, 12, 8, 2
MODULE = GatedDeltaNet(num_heads=N, chunk=5)


@pytest.fixture(scope="module")
def setup():
  x = jax.random.normal(jax.random.PRNGKey(0), (B, L, D))
  params = jax.jit(MODULE.init)(jax.random.PRNGKey(1), x)
  lengths = jnp.array([L, 7], jnp.int32)
  state = mixer_checks.random_state(MODULE, params, x)
  return x, params, lengths, state


@pytest.fixture(scope="module")
def reference(setup):
  x, params, lengths, state = setup
  return mixer_checks.check_fast_equals_reference(MODULE, params, x, lengths, state)


def test_fast_equals_reference(reference):
  assert reference is not None


def test_decoding_in_pieces_equals_the_full_pass(setup):
  x, params, _, _ = setup
  mixer_checks.check_decoding(MODULE, params, x, [5, 1, 6])


def test_bfloat16_compute(setup, reference):
  mixer_checks.check_bf16(MODULE, setup[1], setup[0], setup[2], setup[3], reference)


def _torch_layer(p, x, state, negative):
  """The layer in float64 PyTorch, one step at a time, from our parameters."""
  t = {k: torch.tensor(np.asarray(v, np.float64), requires_grad=True)
       for k, v in _flat(p).items()}
  x = torch.tensor(np.asarray(x, np.float64), requires_grad=True)
  s = torch.tensor(np.asarray(state, np.float64), requires_grad=True)
  kd = D // N
  silu = torch.nn.functional.silu

  def l2(a):
    return a / torch.sqrt((a ** 2).sum(-1, keepdim=True) + 1e-6)

  q = l2(silu(torch.einsum("bld,dnk->blnk", x, t["query"]))) * kd ** -0.5
  k = l2(silu(torch.einsum("bld,dnk->blnk", x, t["key"])))
  v = silu(torch.einsum("bld,dnk->blnk", x, t["value"]))
  beta = torch.sigmoid(torch.einsum("bld,dn->bln", x, t["beta"])) * (2.0 if negative else 1.0)
  dt = torch.nn.functional.softplus(torch.einsum("bld,dn->bln", x, t["decay"]) + t["dt_bias"])
  a = torch.exp(-torch.exp(t["A_log"]) * dt)
  state_t, outs = s, []
  for i in range(L):
    k_i = k[:, i][..., :, None]
    beta_i = beta[:, i][..., None, None]
    erased = state_t - beta_i * k_i @ (k_i.transpose(-1, -2) @ state_t)
    state_t = a[:, i][..., None, None] * erased + beta_i * k_i @ v[:, i][..., None, :]
    outs.append((state_t.transpose(-1, -2) @ q[:, i][..., None])[..., 0])
  o = torch.stack(outs, 1)
  o = o / torch.sqrt((o ** 2).mean(-1, keepdim=True) + 1e-6) * t["norm_scale"]
  y = (o.reshape(B, L, D) * silu(x @ t["gate"])) @ t["out"]
  return y, state_t, t, x, s


def _flat(p):
  return {"query": p["query"]["kernel"], "key": p["key"]["kernel"],
          "value": p["value"]["kernel"], "beta": p["beta"]["kernel"],
          "decay": p["decay"]["kernel"], "dt_bias": p["dt_bias"], "A_log": p["A_log"],
          "norm_scale": p["norm_scale"], "gate": p["gate"]["kernel"], "out": p["out"]["kernel"]}


@pytest.mark.parametrize("negative", [False, True])
def test_layer_equals_a_float64_torch_loop(setup, negative):
  x, params, _, state = setup
  module = MODULE.clone(allow_negative_eigenvalues=negative)
  (y, last), (grads, dx, dstate) = mixer_checks.outputs_and_grads(module)(params, x, None, state)
  y_t, last_t, t, x_t, s_t = _torch_layer(params["params"], x, state, negative)
  w = torch.tensor(np.cos(np.arange(y.size)).reshape(y.shape))
  ws = torch.tensor(np.cos(np.arange(last.size)).reshape(last.shape))
  ((y_t * w).sum() + (torch.sin(last_t) * ws).sum()).backward()
  mixer_checks.close(y, y_t.detach().numpy())
  mixer_checks.close(last, last_t.detach().numpy())
  mixer_checks.close(dx, x_t.grad.numpy())
  mixer_checks.close(dstate, s_t.grad.numpy())
  for name, g in _flat(grads["params"]).items():
    mixer_checks.close(g, t[name].grad.numpy())


def test_negative_eigenvalues_double_beta():
  # With beta = 2 sigmoid(.) a transition can flip the sign of what a key stores: the state
  # component along k after one step from S with the same key written is (1 - beta) times it.
  x = jax.random.normal(jax.random.PRNGKey(4), (1, 6, D))
  for module in (DeltaNet(num_heads=N, chunk=4), GatedDeltaNet(num_heads=N, chunk=4)):
    params = module.init(jax.random.PRNGKey(5), x)
    params["params"]["beta"]["kernel"] = jnp.zeros_like(params["params"]["beta"]["kernel"])
    plain = module.apply(params, x)[1]
    negative = module.clone(allow_negative_eigenvalues=True).apply(params, x)[1]
    # beta = 0.5 against 1.0: different states (1.0 is a pure overwrite).
    assert float(jnp.abs(plain - negative).max()) > 1e-3


def test_registry_fields_and_bad_values():
  section = registry.section("gated_deltanet")
  assert section["allow_negative_eigenvalues"] is False and section["init"] == "torch"
  assert registry.section("deltanet")["allow_negative_eigenvalues"] is False
  for name in ("gated_deltanet", "deltanet"):
    with pytest.raises(ValueError, match=r"model.allow_negative_eigenvalues='yes'"):
      registry.make_config({"name": name, "allow_negative_eigenvalues": "yes"})
  with pytest.raises(ValueError, match=r"model.num_heads=3; must divide model.d_model=8"):
    registry.make_config({"name": "gated_deltanet", "d_model": 8, "num_heads": 3})
  with pytest.raises(ValueError, match=r"impl='parallel'; allowed: \('fast', 'reference'\)"):
    GatedDeltaNet(num_heads=2, impl="parallel").init(jax.random.PRNGKey(0), jnp.zeros((1, 3, 8)))
