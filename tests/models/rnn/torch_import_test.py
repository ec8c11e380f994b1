"""Imported PyTorch RNN/LSTM/GRU: outputs and gradients equal PyTorch's within 1e-5 (float32)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models.rnn import torch_import

torch = pytest.importorskip("torch")

B, L, D, H = 3, 7, 5, 4


def _torch_module(kind, **kw):
  if kind.startswith("rnn"):
    return torch.nn.RNN(D, H, nonlinearity=kind[4:], **kw)
  return {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](D, H, **kw)


def _compare(kind, num_layers, bidirectional, batch_first, lengths):
  torch.manual_seed(0)
  module = _torch_module(kind, num_layers=num_layers, bidirectional=bidirectional,
                         batch_first=batch_first)
  rng = np.random.RandomState(1)
  n_dirs = 2 if bidirectional else 1
  x = rng.randn(B, L, D).astype(np.float32)
  h0 = [rng.randn(num_layers * n_dirs, B, H).astype(np.float32)
        for _ in range(2 if kind == "lstm" else 1)]
  w_y = rng.randn(B, L, n_dirs * H).astype(np.float32)
  w_h = rng.randn(*h0[0].shape).astype(np.float32)  # [layers * dirs, B, H], PyTorch's layout

  # PyTorch, on a packed sequence when lengths are given.
  xt = torch.tensor(x if batch_first else x.transpose(1, 0, 2), requires_grad=True)
  h0t = [torch.tensor(h, requires_grad=True) for h in h0]
  inp = xt
  if lengths is not None:
    inp = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lengths), batch_first=batch_first,
                                                  enforce_sorted=False)
  out, final = module(inp, tuple(h0t) if kind == "lstm" else h0t[0])
  if lengths is not None:
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=batch_first, total_length=L)
  yt = out if batch_first else out.transpose(0, 1)
  ht = final[0] if kind == "lstm" else final
  loss = (yt * torch.tensor(w_y)).sum() + (ht * torch.tensor(w_h)).sum()
  if kind == "lstm":
    loss = loss + final[1].sum()
  loss.backward()

  # attnlab, with the imported weights.
  layer = torch_import.rnn_from_torch(module)
  variables = torch_import.import_torch_rnn(module)
  lengths_j = None if lengths is None else jnp.asarray(lengths)

  def f(variables, x, h0):
    y, final = layer.apply(variables, x, lengths_j, tuple(h0) if kind == "lstm" else h0[0])
    h = final[0] if kind == "lstm" else final
    total = jnp.sum(y * w_y) + jnp.sum(jnp.swapaxes(h, 0, 1) * w_h)
    if kind == "lstm":
      total = total + jnp.sum(final[1])
    return total, (y, final)

  # attnlab's state is batch first: PyTorch's h0 / h_n with the first two axes swapped.
  (value, (y, final_j)), grads = jax.value_and_grad(f, argnums=(0, 1, 2), has_aux=True)(
      variables, jnp.asarray(x), [jnp.asarray(h.transpose(1, 0, 2)) for h in h0])
  g_params, g_x, g_h0 = grads

  tol = dict(atol=1e-5, rtol=1e-5)
  np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
  finals_t = final if kind == "lstm" else (final,)
  finals_j = final_j if kind == "lstm" else (final_j,)
  for ours, theirs in zip(finals_j, finals_t):
    np.testing.assert_allclose(np.swapaxes(ours, 0, 1), theirs.detach().numpy(), **tol)
  np.testing.assert_allclose(value, loss.item(), rtol=1e-5)
  gx_t = xt.grad.numpy() if batch_first else xt.grad.numpy().transpose(1, 0, 2)
  np.testing.assert_allclose(g_x, gx_t, **tol)
  for ours, theirs in zip(g_h0, h0t):
    np.testing.assert_allclose(np.swapaxes(ours, 0, 1), theirs.grad.numpy(), **tol)
  for name, p in module.named_parameters():
    np.testing.assert_allclose(g_params["params"][name], p.grad.numpy(), err_msg=name, **tol)


@pytest.mark.parametrize("kind", ("rnn_tanh", "rnn_relu", "lstm", "gru"))
def test_stacked_bidirectional_padded_matches_torch(kind):
  _compare(kind, num_layers=2, bidirectional=True, batch_first=True, lengths=[7, 3, 5])


@pytest.mark.parametrize("kind", ("lstm", "gru"))
def test_single_layer_time_major_matches_torch(kind):
  _compare(kind, num_layers=1, bidirectional=False, batch_first=False, lengths=None)


def test_config_and_rejections():
  config = torch_import.rnn_config(torch.nn.GRU(D, H, num_layers=3, dropout=0.25, bidirectional=True))
  assert config == {"cell": "gru", "hidden_size": H, "num_layers": 3, "bidirectional": True,
                    "dropout_rate": 0.25}
  no_bias = torch.nn.LSTM(D, H, bias=False)
  params = torch_import.import_torch_rnn(no_bias)["params"]
  assert float(jnp.abs(params["bias_ih_l0"]).sum()) == 0.0 and params["bias_hh_l0"].shape == (4 * H,)
  with pytest.raises(ValueError, match="proj_size must be 0"):
    torch_import.rnn_config(torch.nn.LSTM(D, H, proj_size=2))
  with pytest.raises(ValueError, match="must be a torch nn.RNN, nn.LSTM or nn.GRU"):
    torch_import.rnn_config(torch.nn.Linear(D, H))


def test_imported_weights_override_the_forget_bias_init():
  # forget_bias only sets the initial values: a layer configured with it computes torch's LSTM
  # once torch's parameters are imported.
  module = torch.nn.LSTM(D, H, batch_first=True)
  layer = torch_import.rnn_from_torch(module, forget_bias=1.0)
  variables = torch_import.import_torch_rnn(module)
  x = np.random.default_rng(0).normal(size=(B, L, D)).astype(np.float32)
  with torch.no_grad():
    want = module(torch.tensor(x))[0].numpy()
  np.testing.assert_allclose(layer.apply(variables, jnp.asarray(x))[0], want, atol=1e-5)
