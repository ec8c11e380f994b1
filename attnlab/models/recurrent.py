"""Sequence layer running a classic cell (simple RNN, LSTM, GRU) over time, PyTorch-compatible.

``RNN(cell="lstm", hidden_size=H, num_layers=2, bidirectional=True)(x_BLD, lengths_B)`` matches
``torch.nn.LSTM(D, H, num_layers=2, bidirectional=True, batch_first=True)`` on a packed sequence:
parameters carry PyTorch's ``state_dict`` names (``weight_ih_l0``, ``weight_hh_l1_reverse``, ...) and
shapes, carries PyTorch's ``[num_layers * num_directions, B, H]`` layout.

Speed: the input projection of all time steps is one matmul before the time loop, and the loop is a
``lax.scan`` whose backward pass is written by hand (``recurrence``): per step it does only the one
unavoidable matmul (dh_prev = dgh W_hh); the gradient of ``W_hh`` is one big matmul after the loop.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from attnlab.models import cells

IMPLEMENTATIONS = ("custom_vjp", "autodiff")  # how the time loop is differentiated


def _masked_step(combine, dtype, w_hh_HG, b_hh_G, carry, gx_BG, valid_B):
  """One step with padding: past a sequence's end the carry is frozen and the output is zero."""
  gh_BG = (jnp.dot(carry[0].astype(dtype), w_hh_HG) + b_hh_G[None]).astype(jnp.float32)
  new, y_BH = combine(carry, gx_BG.astype(jnp.float32), gh_BG)
  if valid_B is not None:
    new = tuple(jnp.where(valid_B[:, None], n, c) for n, c in zip(new, carry))
    y_BH = jnp.where(valid_B[:, None], y_BH, 0.0)
  return new, y_BH


def _forward(combine, unroll, w_hh_HG, b_hh_G, gx_LBG, carry0, valid_LB):
  """The plain scan; returns (y_LBH, final carry, carries before each step)."""
  dtype = w_hh_HG.dtype

  def body(carry, inputs):
    gx_BG, valid_B = inputs
    new, y_BH = _masked_step(combine, dtype, w_hh_HG, b_hh_G, carry, gx_BG, valid_B)
    return new, (y_BH, carry)

  final, (y_LBH, prev_carries) = jax.lax.scan(body, carry0, (gx_LBG, valid_LB), unroll=unroll)
  return y_LBH, final, prev_carries


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def recurrence(combine: Callable, unroll: int, w_hh_HG, b_hh_G, gx_LBG, carry0, valid_LB):
  """Runs ``combine`` over time: y_LBH and the final carry (float32), given gx = x W_ih^T + b_ih.

  ``w_hh_HG`` is W_hh transposed, in the compute dtype; ``valid_LB`` is a bool mask or None.
  """
  y_LBH, final, _ = _forward(combine, unroll, w_hh_HG, b_hh_G, gx_LBG, carry0, valid_LB)
  return y_LBH, final


def _recurrence_fwd(combine, unroll, w_hh_HG, b_hh_G, gx_LBG, carry0, valid_LB):
  y_LBH, final, prev = _forward(combine, unroll, w_hh_HG, b_hh_G, gx_LBG, carry0, valid_LB)
  return (y_LBH, final), (w_hh_HG, b_hh_G, gx_LBG, prev, valid_LB)


def _recurrence_bwd(combine, unroll, res, cotangents):
  w_hh_HG, b_hh_G, gx_LBG, prev, valid_LB = res
  dy_LBH, dfinal = cotangents
  dtype = w_hh_HG.dtype
  h_prev_LBH = prev[0].astype(dtype)
  # All hidden projections at once: one big matmul instead of one per step.
  gh_LBG = (jnp.einsum("lbh,hg->lbg", h_prev_LBH, w_hh_HG) + b_hh_G[None, None]).astype(jnp.float32)

  def elementwise(carry, gx_BG, gh_BG, valid_B):
    new, y_BH = combine(carry, gx_BG, gh_BG)
    if valid_B is not None:
      new = tuple(jnp.where(valid_B[:, None], n, c) for n, c in zip(new, carry))
      y_BH = jnp.where(valid_B[:, None], y_BH, 0.0)
    return new, y_BH

  def body(dcarry, inputs):
    carry, gx_BG, gh_BG, dy_BH, valid_B = inputs
    _, vjp = jax.vjp(lambda c, a, b: elementwise(c, a, b, valid_B),
                     carry, gx_BG.astype(jnp.float32), gh_BG)
    dprev, dgx_BG, dgh_BG = vjp((dcarry, dy_BH.astype(jnp.float32)))
    dh_BH = dprev[0] + jnp.dot(dgh_BG.astype(dtype), w_hh_HG.T).astype(jnp.float32)
    return (dh_BH,) + tuple(dprev[1:]), (dgx_BG, dgh_BG)

  dfinal = tuple(d.astype(jnp.float32) for d in dfinal)
  dcarry0, (dgx_LBG, dgh_LBG) = jax.lax.scan(
      body, dfinal, (prev, gx_LBG, gh_LBG, dy_LBH, valid_LB), reverse=True, unroll=unroll)
  # The hidden-weight gradient as one matmul over all (time, batch) pairs.
  dw_hh_HG = jnp.einsum("lbh,lbg->hg", h_prev_LBH, dgh_LBG.astype(dtype))
  db_hh_G = jnp.sum(dgh_LBG, axis=(0, 1))
  return (dw_hh_HG.astype(w_hh_HG.dtype), db_hh_G.astype(b_hh_G.dtype),
          dgx_LBG.astype(gx_LBG.dtype), dcarry0, None)


recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


def _autodiff_recurrence(combine, unroll, w_hh_HG, b_hh_G, gx_LBG, carry0, valid_LB):
  y_LBH, final, _ = _forward(combine, unroll, w_hh_HG, b_hh_G, gx_LBG, carry0, valid_LB)
  return y_LBH, final


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
                  dtype=jnp.float32, implementation: str = "custom_vjp", unroll: int = 1):
  """One layer, one direction: (y_BLH in ``dtype``, final carry in float32)."""
  combine = cells.KINDS[kind][2]
  if reverse:
    x_BLD = reverse_prefix_BL(x_BLD, lengths_B)
  # Input projection for every step at once; time-major for the scan.
  gx_LBG = (jnp.einsum("bld,gd->lbg", x_BLD.astype(dtype), params["weight_ih"].astype(dtype))
            + params["bias_ih"].astype(dtype)[None, None])
  valid_LB = None
  if lengths_B is not None:
    valid_LB = jnp.arange(x_BLD.shape[1])[:, None] < lengths_B[None, :]
  w_hh_HG = params["weight_hh"].astype(dtype).T
  b_hh_G = params["bias_hh"].astype(dtype)
  run = recurrence if implementation == "custom_vjp" else _autodiff_recurrence
  y_LBH, final = run(combine, unroll, w_hh_HG, b_hh_G, gx_LBG, carry0, valid_LB)
  y_BLH = jnp.swapaxes(y_LBH, 0, 1).astype(dtype)
  if reverse:
    y_BLH = reverse_prefix_BL(y_BLH, lengths_B)
  return y_BLH, final


class RNN(nn.Module):
  """Stacked (bi)directional RNN/LSTM/GRU over ``x_BLD``, PyTorch's ``nn.RNN``/``LSTM``/``GRU``.

  Returns ``(y_BLH, final_carry)``: y has 2H features when bidirectional (forward first), zeros past
  each sequence's length. Carries use PyTorch's layout, ``h`` of shape [num_layers * num_directions,
  B, H] (index ``layer * num_directions + direction``) and, for the LSTM, a tuple ``(h, c)``.
  """
  cell: str  # a cells.CELLS key, or "rnn" (= "rnn_tanh")
  hidden_size: int  # H
  num_layers: int = 1  # stacked layers, each feeding the next
  bidirectional: bool = False  # also run each layer backwards over the valid prefix
  dropout_rate: float = 0.0  # dropout on the outputs of every layer but the last
  dtype: Any = jnp.float32  # compute dtype (matmuls, outputs); gate math and carries stay float32
  param_dtype: Any = jnp.float32  # dtype of the stored parameters
  implementation: str = "custom_vjp"  # IMPLEMENTATIONS: hand-written or autodiff backward
  unroll: int = 1  # time steps per scan iteration

  def _check(self, x_BLD, lengths_B, initial_carry):
    kind = cells.resolve(self.cell)
    if x_BLD.ndim != 3:
      raise ValueError(f"RNN input x must be rank 3 [batch, length, features]; got shape {x_BLD.shape}")
    for field, value, lo in (("hidden_size", self.hidden_size, 1), ("num_layers", self.num_layers, 1),
                             ("unroll", self.unroll, 1)):
      if not isinstance(value, int) or value < lo:
        raise ValueError(f"RNN {field} must be an int >= {lo}; got {value!r}")
    if not 0.0 <= self.dropout_rate < 1.0:
      raise ValueError(f"RNN dropout_rate must be in [0, 1); got {self.dropout_rate}")
    if self.implementation not in IMPLEMENTATIONS:
      raise ValueError(f"RNN implementation must be one of {IMPLEMENTATIONS}; got {self.implementation!r}")
    if self.has_variable("params", "weight_ih_l0"):
      expected = self.get_variable("params", "weight_ih_l0").shape[1]
      if expected != x_BLD.shape[-1]:
        raise ValueError(f"RNN input feature size {x_BLD.shape[-1]} does not match the parameters, "
                         f"which expect {expected} (weight_ih_l0 shape "
                         f"{self.get_variable('params', 'weight_ih_l0').shape})")
    batch, steps = x_BLD.shape[:2]
    if lengths_B is not None:
      if jnp.ndim(lengths_B) != 1 or jnp.shape(lengths_B)[0] != batch:
        raise ValueError(f"RNN lengths must have shape [batch] = [{batch}]; got {jnp.shape(lengths_B)}")
      try:  # Concrete lengths are checked here; traced ones (under jit) cannot be.
        lo, hi = int(jnp.min(lengths_B)), int(jnp.max(lengths_B))
      except jax.errors.ConcretizationTypeError:
        lo, hi = 0, steps
      if lo < 0 or hi > steps:
        raise ValueError(f"RNN lengths must lie in [0, {steps}] (the sequence length); "
                         f"got min {lo}, max {hi}")
    if initial_carry is not None:
      want = (self.num_layers * (2 if self.bidirectional else 1), batch, self.hidden_size)
      parts = initial_carry if kind == "lstm" else (initial_carry,)
      if kind == "lstm" and (not isinstance(initial_carry, (tuple, list)) or len(initial_carry) != 2):
        raise ValueError("RNN initial_carry for an LSTM must be a tuple (h, c)")
      for p in parts:
        if jnp.shape(p) != want:
          raise ValueError(f"RNN initial_carry entries must have shape [num_layers * num_directions, "
                           f"batch, hidden] = {list(want)}; got {list(jnp.shape(p))}")
    return kind

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, initial_carry=None, *, reverse: bool = False,
               deterministic: bool = True):
    kind = self._check(x_BLD, lengths_B, initial_carry)
    gates, n_carry, _ = cells.KINDS[kind]
    dirs = 2 if self.bidirectional else 1
    batch = x_BLD.shape[0]
    if lengths_B is not None:
      lengths_B = jnp.asarray(lengths_B, jnp.int32)
    if initial_carry is None:
      parts = tuple(jnp.zeros((self.num_layers * dirs, batch, self.hidden_size), jnp.float32)
                    for _ in range(n_carry))
    else:
      parts = tuple(initial_carry) if kind == "lstm" else (initial_carry,)
      parts = tuple(jnp.asarray(p, jnp.float32) for p in parts)
    finals = []
    h_BLD = x_BLD
    for layer in range(self.num_layers):
      outputs = []
      for d in range(dirs):
        suffix = f"_l{layer}" + ("_reverse" if d else "")
        params = cells.make_params(self, suffix, h_BLD.shape[-1], self.hidden_size, gates,
                                   self.param_dtype)
        carry0 = tuple(p[layer * dirs + d] for p in parts)
        y_BLH, final = run_direction(
            kind, params, h_BLD, carry0, lengths_B, reverse=reverse != bool(d), dtype=self.dtype,
            implementation=self.implementation, unroll=self.unroll)
        outputs.append(y_BLH)
        finals.append(final)
      h_BLD = outputs[0] if dirs == 1 else jnp.concatenate(outputs, axis=-1)
      if layer < self.num_layers - 1 and self.dropout_rate > 0.0:
        h_BLD = nn.Dropout(self.dropout_rate)(h_BLD, deterministic=deterministic)
    stacked = tuple(jnp.stack([f[i] for f in finals]) for i in range(n_carry))
    return h_BLD, (stacked if kind == "lstm" else stacked[0])
