"""Cells: PyTorch equations, fused (summed) projections, bf16, bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models.rnn import cells

KINDS = ("rnn_tanh", "rnn_relu", "lstm", "gru")
B, D, H = 3, 5, 4


def _carry(kind, key):
  n = cells.KINDS[kind][1]
  return tuple(jax.random.normal(k, (B, H)) for k in jax.random.split(key, n))


@pytest.mark.parametrize("kind", KINDS)
def test_cell_matches_torch_cell(kind):
  torch = pytest.importorskip("torch")
  torch.manual_seed(0)
  ref = {"rnn_tanh": lambda: torch.nn.RNNCell(D, H, nonlinearity="tanh"),
         "rnn_relu": lambda: torch.nn.RNNCell(D, H, nonlinearity="relu"),
         "lstm": lambda: torch.nn.LSTMCell(D, H), "gru": lambda: torch.nn.GRUCell(D, H)}[kind]()
  params = {k: jnp.asarray(v.detach().numpy()) for k, v in ref.state_dict().items()}
  x = np.random.RandomState(0).randn(B, D).astype(np.float32)
  carry = tuple(np.asarray(c) for c in _carry(kind, jax.random.PRNGKey(1)))
  cell = cells.CELLS[kind](hidden_size=H)
  new, y = cell.apply({"params": params}, carry, jnp.asarray(x))
  t_carry = tuple(torch.tensor(c) for c in carry)
  t_out = ref(torch.tensor(x), t_carry if kind == "lstm" else t_carry[0])
  t_out = t_out if isinstance(t_out, tuple) else (t_out,)
  for ours, theirs in zip(new, t_out):
    np.testing.assert_allclose(ours, theirs.detach().numpy(), atol=1e-6)
  np.testing.assert_allclose(y, t_out[0].detach().numpy(), atol=1e-6)


@pytest.mark.parametrize("kind", ("rnn_tanh", "rnn_relu", "lstm"))
def test_fusable_cells_need_only_the_sum_of_projections(kind):
  _, _, combine, fusable = cells.KINDS[kind]
  assert fusable
  carry = _carry(kind, jax.random.PRNGKey(2))
  gx, gh = jax.random.normal(jax.random.PRNGKey(3), (2, B, cells.KINDS[kind][0] * H))
  (want_carry, want_y), (got_carry, got_y) = combine(carry, gx, gh), combine(carry, gx + gh, None)
  np.testing.assert_allclose(got_y, want_y, atol=1e-6)
  for g, w in zip(got_carry, want_carry):
    np.testing.assert_allclose(g, w, atol=1e-6)
  assert not cells.KINDS["gru"][3]  # the reset gate multiplies W_hn h alone


def test_params_have_pytorch_names_shapes_and_init():
  cell = cells.LSTMCell(hidden_size=H)
  carry = cell.initialize_carry(B)
  params = cell.init(jax.random.PRNGKey(0), carry, jnp.zeros((B, D)))["params"]
  assert {k: v.shape for k, v in params.items()} == {
      "weight_ih": (4 * H, D), "weight_hh": (4 * H, H), "bias_ih": (4 * H,), "bias_hh": (4 * H,)}
  bound = 1 / np.sqrt(H)
  assert all(float(jnp.max(jnp.abs(v))) <= bound for v in params.values())


@pytest.mark.parametrize("kind", ("lstm", "gru"))
def test_bf16_compute_close_to_float32(kind):
  carry = _carry(kind, jax.random.PRNGKey(5))
  x = jax.random.normal(jax.random.PRNGKey(6), (B, D))
  params = cells.CELLS[kind](hidden_size=H).init(jax.random.PRNGKey(7), carry, x)
  _, y32 = cells.CELLS[kind](hidden_size=H).apply(params, carry, x)
  new16, y16 = cells.CELLS[kind](hidden_size=H, dtype=jnp.bfloat16).apply(params, carry, x)
  assert y16.dtype == jnp.bfloat16 and new16[0].dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(y16, np.float32), y32, atol=3e-2)


def test_unknown_cell_name_lists_allowed():
  with pytest.raises(ValueError, match=r"cell must be one of .*'gru'.*'lstm'.*got 'transformer'"):
    cells.resolve("transformer")
  assert cells.resolve("rnn") == "rnn_tanh"


def test_bad_nonlinearity_and_rank():
  with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu'; got 'gelu'"):
    cells.SimpleRNNCell(hidden_size=H, nonlinearity="gelu").init(
        jax.random.PRNGKey(0), (jnp.zeros((B, H)),), jnp.zeros((B, D)))
  with pytest.raises(ValueError, match=r"rank 2 \[batch, features\]; got shape \(3, 2, 5\)"):
    cells.GRUCell(hidden_size=H).init(jax.random.PRNGKey(0), (jnp.zeros((B, H)),),
                                      jnp.zeros((B, 2, D)))
