"""Classic recurrent cells with exactly PyTorch's equations and parameter layout.

Every cell owns ``weight_ih`` [W, D], ``weight_hh`` [W, H], ``bias_ih`` [W] and ``bias_hh`` [W]
(W = gates x H: the gates stacked in PyTorch's order), so moving PyTorch weights over is a plain copy. A cell is split
into the two matmuls and an elementwise ``combine(carry, gx_BW, gh_BW)`` that sees the projected input
``gx = x W_ih^T + b_ih`` and the projected hidden state ``gh = h W_hh^T + b_hh``; the sequence layer
(``attnlab.models.rnn.layer``) reuses ``combine`` with its own, faster, time loop.

Carries are tuples whose first entry is ``h_BH``: ``(h,)`` for the simple RNN and GRU, ``(h, c)`` for
the LSTM. Gate math runs in float32 whatever the compute dtype, so bf16 stays close to float32.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

Carry = tuple  # (h_BH,) or (h_BH, c_BH)


def _sum(gx_BW, gh_BW):
  """gx + gh; gh is None when the caller already added the two projections (one fused matmul)."""
  return gx_BW if gh_BW is None else gx_BW + gh_BW


def rnn_tanh_combine(carry, gx_BW, gh_BW):
  """h' = tanh(W_ih x + b_ih + W_hh h + b_hh)."""
  h_BH = jnp.tanh(_sum(gx_BW, gh_BW))
  return (h_BH,), h_BH


def rnn_relu_combine(carry, gx_BW, gh_BW):
  """h' = relu(W_ih x + b_ih + W_hh h + b_hh)."""
  h_BH = jax.nn.relu(_sum(gx_BW, gh_BW))
  return (h_BH,), h_BH


def lstm_combine(carry, gx_BW, gh_BW):
  """PyTorch nn.LSTM: gates i, f, g, o; c' = f c + i g; h' = o tanh(c')."""
  _, c_BH = carry
  i_BH, f_BH, g_BH, o_BH = jnp.split(_sum(gx_BW, gh_BW), 4, axis=-1)
  c_BH = jax.nn.sigmoid(f_BH) * c_BH + jax.nn.sigmoid(i_BH) * jnp.tanh(g_BH)
  h_BH = jax.nn.sigmoid(o_BH) * jnp.tanh(c_BH)
  return (h_BH, c_BH), h_BH


def gru_combine(carry, gx_BW, gh_BW):
  """PyTorch nn.GRU: gates r, z, n; the reset gate multiplies the hidden matmul (bias included)."""
  (h_BH,) = carry
  xr_BH, xz_BH, xn_BH = jnp.split(gx_BW, 3, axis=-1)
  hr_BH, hz_BH, hn_BH = jnp.split(gh_BW, 3, axis=-1)
  r_BH = jax.nn.sigmoid(xr_BH + hr_BH)
  z_BH = jax.nn.sigmoid(xz_BH + hz_BH)
  n_BH = jnp.tanh(xn_BH + r_BH * hn_BH)
  h_BH = (1.0 - z_BH) * n_BH + z_BH * h_BH
  return (h_BH,), h_BH


# Cell kind -> (number of gates G, carry entries, elementwise combine, fusable). A fusable cell
# only needs gx + gh, so the sequence layer may compute both with one matmul [x, h] [W_ih | W_hh]^T
# and call combine(carry, z, None); the GRU needs W_hn h apart (the reset gate multiplies it).
KINDS: dict[str, tuple[int, int, Callable, bool]] = {
    "rnn_tanh": (1, 1, rnn_tanh_combine, True),
    "rnn_relu": (1, 1, rnn_relu_combine, True),
    "lstm": (4, 2, lstm_combine, True),
    "gru": (3, 1, gru_combine, False),
}


def torch_uniform(hidden_size: int):
  """PyTorch's default RNN init: U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias."""
  bound = 1.0 / (hidden_size ** 0.5)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


def forget_gate_init(init, hidden_size: int, value: float, share: float):
  """``init`` with an LSTM bias's forget-gate block (PyTorch's gate order i, f, g, o) set to
  ``share * value``: b_ih gets the whole value and b_hh none, so their sum starts at ``value``."""
  def init_fn(key, shape, dtype=jnp.float32):
    bias = init(key, shape, dtype)
    return bias.at[hidden_size:2 * hidden_size].set(jnp.asarray(share * value, dtype))
  return init_fn


def make_params(module: nn.Module, suffix: str, input_size: int, hidden_size: int, gates: int,
                param_dtype, forget_bias: float | None = None) -> dict[str, jax.Array]:
  """Creates (or fetches) the four PyTorch-layout parameters ``weight_ih{suffix}`` etc. on ``module``.

  ``forget_bias`` (LSTM only; None: PyTorch's init): the forget gate's total bias at init
  (Jozefowicz et al. 2015 recommend 1, so that the cell remembers by default).
  """
  init = torch_uniform(hidden_size)
  bias_ih_init = bias_hh_init = init
  if forget_bias is not None:
    bias_ih_init = forget_gate_init(init, hidden_size, forget_bias, 1.0)
    bias_hh_init = forget_gate_init(init, hidden_size, forget_bias, 0.0)
  gh = gates * hidden_size
  return {
      "weight_ih": module.param(f"weight_ih{suffix}", init, (gh, input_size), param_dtype),
      "weight_hh": module.param(f"weight_hh{suffix}", init, (gh, hidden_size), param_dtype),
      "bias_ih": module.param(f"bias_ih{suffix}", bias_ih_init, (gh,), param_dtype),
      "bias_hh": module.param(f"bias_hh{suffix}", bias_hh_init, (gh,), param_dtype),
  }


def zero_carry(kind: str, batch_size: int, hidden_size: int) -> Carry:
  """The all-zero carry PyTorch uses when no h0/c0 is given (float32)."""
  return tuple(jnp.zeros((batch_size, hidden_size), jnp.float32) for _ in range(KINDS[kind][1]))


def project(x_BD, weight_WD, bias_W, dtype):
  """x W^T + b in the compute dtype (the layout PyTorch uses: weight is [out, in])."""
  return (jnp.einsum("...d,gd->...g", x_BD.astype(dtype), weight_WD.astype(dtype))
          + bias_W.astype(dtype)[None])


def step(kind: str, params: dict, carry: Carry, x_BD, dtype=jnp.float32):
  """One time step of cell ``kind`` given the four parameters: returns (new carry, y_BH)."""
  combine = KINDS[kind][2]
  gx_BW = project(x_BD, params["weight_ih"], params["bias_ih"], dtype).astype(jnp.float32)
  gh_BW = project(carry[0], params["weight_hh"], params["bias_hh"], dtype).astype(jnp.float32)
  new_carry, y_BH = combine(carry, gx_BW, gh_BW)
  return new_carry, y_BH.astype(dtype)


class _Cell(nn.Module):
  """A single step ``(carry, x_BD) -> (carry, y_BH)``; parameters named like PyTorch's RNNCell."""
  hidden_size: int  # H
  dtype: Any = jnp.float32  # compute dtype of the matmuls and of y
  param_dtype: Any = jnp.float32  # dtype of the stored parameters
  kind = "rnn_tanh"  # key of KINDS; fixed by each subclass

  @nn.compact
  def __call__(self, carry: Carry, x_BD):
    if x_BD.ndim != 2:
      raise ValueError(f"{type(self).__name__} input must be rank 2 [batch, features]; "
                       f"got shape {x_BD.shape}")
    gates = KINDS[self.kind][0]
    params = make_params(self, "", x_BD.shape[-1], self.hidden_size, gates, self.param_dtype)
    return step(self.kind, params, carry, x_BD, self.dtype)

  def initialize_carry(self, batch_size: int) -> Carry:
    return zero_carry(self.kind, batch_size, self.hidden_size)


class SimpleRNNCell(_Cell):
  """Elman RNN, ``nn.RNNCell``: h' = act(W_ih x + b_ih + W_hh h + b_hh), act tanh or relu."""
  nonlinearity: str = "tanh"  # "tanh" or "relu"

  @property
  def kind(self):
    if self.nonlinearity not in ("tanh", "relu"):
      raise ValueError(f"nonlinearity must be 'tanh' or 'relu'; got {self.nonlinearity!r}")
    return f"rnn_{self.nonlinearity}"


class LSTMCell(_Cell):
  """PyTorch ``nn.LSTMCell``; carry (h, c)."""
  kind = "lstm"


class GRUCell(_Cell):
  """PyTorch ``nn.GRUCell``; carry (h,)."""
  kind = "gru"


# Cell name -> constructor taking (hidden_size, dtype=..., param_dtype=...).
CELLS = {
    "rnn_tanh": functools.partial(SimpleRNNCell, nonlinearity="tanh"),
    "rnn_relu": functools.partial(SimpleRNNCell, nonlinearity="relu"),
    "lstm": LSTMCell,
    "gru": GRUCell,
}
ALIASES = {"rnn": "rnn_tanh"}  # extra accepted names


def resolve(name: str) -> str:
  """Canonical cell name, or a ValueError listing the allowed names."""
  name = ALIASES.get(name, name)
  if name not in CELLS:
    allowed = sorted(list(CELLS) + list(ALIASES))
    raise ValueError(f"cell must be one of {allowed}; got {name!r}")
  return name
