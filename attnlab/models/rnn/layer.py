"""Sequence layer running a classic cell (simple RNN, LSTM, GRU) over time, PyTorch-compatible.

``RNN(cell="lstm", hidden_size=H, num_layers=2, bidirectional=True)(x_BLD, lengths_B)`` matches
``torch.nn.LSTM(D, H, num_layers=2, bidirectional=True, batch_first=True)`` on a packed sequence:
parameters carry PyTorch's ``state_dict`` names (``weight_ih_l0``, ``weight_hh_l1_reverse``, ...) and
shapes, carries PyTorch's ``[num_layers * num_directions, B, H]`` layout.

The time loop is a ``lax.scan`` with a hand-written backward pass per cell kind (the kernel,
``attnlab.models.rnn.kernel``): forward one matmul per step, saving the gate-gradient factors so the
backward loop needs one matmul per step and the weight gradients become big matmuls after it.
``impl="reference"`` runs the plain scan of ``cells.py`` differentiated by JAX instead: the
reference the kernel is tested against. Speed: ``scripts/benchmarks/recurrent.py``.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from attnlab.models import checks, masks
from attnlab.models.rnn import cells, kernel

def reverse_prefix_BL(x_BL_, lengths_B):
  """Reverses each row's first lengths[b] steps and leaves the padding in place (an involution)."""
  if lengths_B is None:
    return jnp.flip(x_BL_, axis=1)
  steps = x_BL_.shape[1]
  t_L = jnp.arange(steps)
  idx_BL = jnp.where(t_L[None] < lengths_B[:, None], lengths_B[:, None] - 1 - t_L[None], t_L[None])
  idx = idx_BL.reshape(idx_BL.shape + (1,) * (x_BL_.ndim - 2))
  return jnp.take_along_axis(x_BL_, idx, axis=1)


def run_direction(kind: str, params: dict, x_BLD, carry0, lengths_B, *, reverse: bool = False,
                  dtype=jnp.float32, impl: str = "fast", unroll: int = 1):
  """One layer, one direction: (y_BLH in ``dtype``, final carry in float32)."""
  if reverse:
    x_BLD = reverse_prefix_BL(x_BLD, lengths_B)
  valid_BL = masks.valid_BL(lengths_B, x_BLD.shape[1])
  valid_LB = None if valid_BL is None else valid_BL.T
  x_LBD = jnp.swapaxes(x_BLD, 0, 1).astype(dtype)
  weights = (params["weight_ih"].T, params["weight_hh"].T, params["bias_ih"], params["bias_hh"])
  weights = tuple(w.astype(dtype) for w in weights)
  y_BLH, final = kernel.recurrence(kind, impl, unroll, weights, x_LBD, carry0, valid_LB)
  y_BLH = y_BLH.astype(dtype)
  if reverse:
    y_BLH = reverse_prefix_BL(y_BLH, lengths_B)
  return y_BLH, final


class RNN(nn.Module):
  """Stacked (bi)directional RNN/LSTM/GRU over ``x_BLD``, PyTorch's ``nn.RNN``/``LSTM``/``GRU``; a
  mixer (models/__init__.py) with one layer, and the stacked block of the classic cells with more.

  Returns ``(y_BLH, state)``: y has 2H features when bidirectional (forward first), zeros past
  each sequence's length. The state is ``h`` of shape [B, num_layers * num_directions, H] (index
  ``layer * num_directions + direction``; batch first, as every mixer's state: PyTorch's h_n with its
  first two axes swapped) and, for the LSTM, a tuple ``(h, c)``.
  """
  cell: str  # a cells.CELLS key, or "rnn" (= "rnn_tanh")
  hidden_size: int  # H
  num_layers: int = 1  # stacked layers, each feeding the next
  bidirectional: bool = False  # also run each layer backwards over the valid prefix
  dropout_rate: float = 0.0  # dropout on the outputs of every layer but the last
  dtype: Any = jnp.float32  # compute dtype (matmuls, outputs); gate math and carries stay float32
  param_dtype: Any = jnp.float32  # dtype of the stored parameters
  impl: str = "fast"  # "fast": the hand-written backward passes; "reference": JAX's autodiff
  unroll: int = 1  # time steps per scan iteration
  forget_bias: float | None = None  # LSTM: the forget gate's total bias at init (None: PyTorch's)

  def _check(self, x_BLD, lengths_B, state):
    kind = cells.resolve(self.cell)
    if x_BLD.ndim != 3:
      raise ValueError(f"RNN input x must be rank 3 [batch, length, features]; got shape {x_BLD.shape}")
    for field, value, lo in (("hidden_size", self.hidden_size, 1), ("num_layers", self.num_layers, 1),
                             ("unroll", self.unroll, 1)):
      if not isinstance(value, int) or value < lo:
        raise ValueError(f"RNN {field} must be an int >= {lo}; got {value!r}")
    if not 0.0 <= self.dropout_rate < 1.0:
      raise ValueError(f"RNN dropout_rate must be in [0, 1); got {self.dropout_rate}")
    if self.forget_bias is not None and kind != "lstm":
      raise ValueError(f"RNN forget_bias={self.forget_bias} is for the LSTM only; cell={self.cell!r}")
    checks.check_impl(self.impl, "RNN")
    if self.has_variable("params", "weight_ih_l0"):
      expected = self.get_variable("params", "weight_ih_l0").shape[1]
      if expected != x_BLD.shape[-1]:
        raise ValueError(f"RNN input feature size {x_BLD.shape[-1]} does not match the parameters, "
                         f"which expect {expected} (weight_ih_l0 shape "
                         f"{self.get_variable('params', 'weight_ih_l0').shape})")
    batch, steps = x_BLD.shape[:2]
    if lengths_B is not None:
      checks.check_lengths("RNN", lengths_B, batch, steps)
    if state is not None:
      want = (batch, self.num_layers * (2 if self.bidirectional else 1), self.hidden_size)
      parts = state if kind == "lstm" else (state,)
      if kind == "lstm" and (not isinstance(state, (tuple, list)) or len(state) != 2):
        raise ValueError("RNN state for an LSTM must be a tuple (h, c)")
      for p in parts:
        if jnp.shape(p) != want:
          raise ValueError(f"RNN state entries must have shape [batch, num_layers * "
                           f"num_directions, hidden] = {list(want)}; got {list(jnp.shape(p))}")
    return kind

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, state=None, *, reverse: bool = False,
               deterministic: bool = True):
    kind = self._check(x_BLD, lengths_B, state)
    gates, n_carry, _, _ = cells.KINDS[kind]
    dirs = 2 if self.bidirectional else 1
    batch = x_BLD.shape[0]
    if lengths_B is not None:
      lengths_B = jnp.asarray(lengths_B, jnp.int32)
    if state is None:
      parts = tuple(jnp.zeros((batch, self.num_layers * dirs, self.hidden_size), jnp.float32)
                    for _ in range(n_carry))
    else:
      parts = tuple(state) if kind == "lstm" else (state,)
      parts = tuple(jnp.asarray(p, jnp.float32) for p in parts)
    finals = []
    h_BLD = x_BLD
    for layer in range(self.num_layers):
      outputs = []
      for d in range(dirs):
        suffix = f"_l{layer}" + ("_reverse" if d else "")
        params = cells.make_params(self, suffix, h_BLD.shape[-1], self.hidden_size, gates,
                                   self.param_dtype, self.forget_bias)
        carry0 = tuple(p[:, layer * dirs + d] for p in parts)
        y_BLH, final = run_direction(
            kind, params, h_BLD, carry0, lengths_B, reverse=reverse != bool(d), dtype=self.dtype,
            impl=self.impl, unroll=self.unroll)
        outputs.append(y_BLH)
        finals.append(final)
      h_BLD = outputs[0] if dirs == 1 else jnp.concatenate(outputs, axis=-1)
      if layer < self.num_layers - 1 and self.dropout_rate > 0.0:
        h_BLD = nn.Dropout(self.dropout_rate)(h_BLD, deterministic=deterministic)
    stacked = tuple(jnp.stack([f[i] for f in finals], axis=1) for i in range(n_carry))
    return h_BLD, (stacked if kind == "lstm" else stacked[0])

  def state_size(self, d_model: int, length: int) -> int:
    """h (and the LSTM's c) of every layer and direction, whatever the length."""
    del d_model, length
    carries = cells.KINDS[cells.resolve(self.cell)][1]
    return carries * self.hidden_size * self.num_layers * (2 if self.bidirectional else 1)
