"""Sequence layer running a classic cell (simple RNN, LSTM, GRU) over time, PyTorch-compatible.

``RNN(cell="lstm", hidden_size=H, num_layers=2, bidirectional=True)(x_BLD, lengths_B)`` matches
``torch.nn.LSTM(D, H, num_layers=2, bidirectional=True, batch_first=True)`` on a packed sequence:
parameters carry PyTorch's ``state_dict`` names (``weight_ih_l0``, ``weight_hh_l1_reverse``, ...) and
shapes, carries PyTorch's ``[num_layers * num_directions, B, H]`` layout.

Speed (see ``attnlab/bench/recurrent.py``): the time loop is a ``lax.scan`` with a hand-written
backward pass per cell kind (``elman_recurrence``, ``lstm_recurrence``, ``gru_recurrence``). Forward,
one matmul per step [x_t, h] [W_ih | W_hh]^T (two for the GRU, whose reset gate needs W_hn h apart);
it saves the activated gates (and the LSTM's c), so the backward loop recomputes no matmul and no
transcendental: per step only the gate gradients and the one unavoidable matmul dh_prev = dg W_hh,
with the weight and input gradients as big matmuls over all steps after it (in the dot form XLA:CPU
runs fastest, ``_weight_grads``). Sigmoid gates use one tanh, sigmoid(z) = (1 + tanh(z / 2)) / 2.
Hoisting the input projection out of the loop, unrolling, and a concatenate-free [B, 4, H] form of
the LSTM gate gradients all measured slower on XLA:CPU. ``implementation="autodiff"`` keeps JAX's own
derivative of the plain scan as a reference.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from attnlab.models import cells

IMPLEMENTATIONS = ("custom_vjp", "autodiff")  # how the time loop is differentiated


def _masked(new, y_BH, carry, valid_B):
  """Past a sequence's end the carry is frozen and the output is zero."""
  if valid_B is None:
    return new, y_BH
  new = tuple(jnp.where(valid_B[:, None], n, c) for n, c in zip(new, carry))
  return new, jnp.where(valid_B[:, None], y_BH, 0.0)


def _project(fused, w_x_DG, w_h_HG, b_x_G, b_h_G, x_BD, h_BH):
  """Pre-activations (gx, gh) of one step; fused: one matmul [x, h] [w_x; w_h] and gh = None."""
  h_BH = h_BH.astype(w_h_HG.dtype)
  if fused:
    xh_BK = jnp.concatenate([x_BD, h_BH], axis=-1)
    w_KG = jnp.concatenate([w_x_DG, w_h_HG], axis=0)  # loop-invariant: XLA hoists it
    return (jnp.dot(xh_BK, w_KG) + (b_x_G + b_h_G)[None]).astype(jnp.float32), None
  gx_BG = jnp.dot(x_BD, w_x_DG) + b_x_G[None]
  gh_BG = jnp.dot(h_BH, w_h_HG) + b_h_G[None]
  return gx_BG.astype(jnp.float32), gh_BG.astype(jnp.float32)


def _forward(combine, fused, unroll, weights, x_LBD, carry0, valid_LB):
  """The plain scan: (y_LBH, final carry, carries before each step, (gx_LBG, gh_LBG or None))."""

  def body(carry, inputs):
    x_BD, valid_B = inputs
    gx_BG, gh_BG = _project(fused, *weights, x_BD, carry[0])
    new, y_BH = _masked(*combine(carry, gx_BG, gh_BG), carry, valid_B)
    return new, (y_BH, carry, (gx_BG, gh_BG))

  final, (y_LBH, prev, pre) = jax.lax.scan(body, carry0, (x_LBD, valid_LB), unroll=unroll)
  return y_LBH, final, prev, pre


def _weight_grads(x_2d, dgx_2d, h_2d, dgh_2d):
  """x^T dgx and h^T dgh, [K, G] each, over all (time, batch) rows.

  The barrier keeps XLA from folding the caller's transpose back to PyTorch's [G, K] layout into the
  dot: XLA:CPU runs that transposed-operand form (contracting the leading dim into a [G, K] result)
  about 1.7x (W_hh) to 4x (W_ih) slower than this one plus a small transpose.
  """
  return jax.lax.optimization_barrier((jnp.dot(x_2d.T, dgx_2d), jnp.dot(h_2d.T, dgh_2d)))


def _lstm_forward(unroll, weights, x_LBD, carry0, valid_LB):
  """The LSTM scan saving what its backward needs: (y_LBH, final, acts_LBG, c_LBH).

  ``acts`` holds the activated gates [sigmoid i, sigmoid f, tanh g, sigmoid o] and ``c`` the cell
  state after each step, so the backward pass recomputes no matmul and no gate.
  """
  w_x_DG, w_h_HG, b_x_G, b_h_G = weights
  # One transcendental per gate: sigmoid(z) = (1 + tanh(z / 2)) / 2, with the 1/2 folded into the
  # weights, so every gate column is acts = scale tanh(z') + shift (1/2 and 1/2, or 1 and 0 for g).
  hidden = w_h_HG.shape[0]
  is_g_G = jnp.arange(4 * hidden) // hidden == 2
  scale_G = jnp.where(is_g_G, 1.0, 0.5)
  shift_G = jnp.where(is_g_G, 0.0, 0.5)
  w_KG = (jnp.concatenate([w_x_DG, w_h_HG], axis=0) * scale_G[None].astype(w_h_HG.dtype))
  b_G = (b_x_G + b_h_G).astype(jnp.float32) * scale_G

  def body(carry, inputs):
    h_BH, c_BH = carry
    x_BD, valid_B = inputs
    xh_BK = jnp.concatenate([x_BD, h_BH.astype(w_KG.dtype)], axis=-1)
    z_BG = jnp.dot(xh_BK, w_KG).astype(jnp.float32) + b_G[None]
    acts_BG = scale_G[None] * jnp.tanh(z_BG) + shift_G[None]
    i_BH, f_BH, g_BH, o_BH = jnp.split(acts_BG, 4, axis=-1)
    c_new = f_BH * c_BH + i_BH * g_BH
    tanh_c = jnp.tanh(c_new)
    h_new = o_BH * tanh_c
    new, y_BH = _masked((h_new, c_new), h_new, carry, valid_B)
    return new, (y_BH, acts_BG, new[1])

  final, saved = jax.lax.scan(body, carry0, (x_LBD, valid_LB), unroll=unroll)
  return (saved[0], final) + tuple(saved[1:])


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def lstm_recurrence(unroll: int, weights, x_LBD, carry0, valid_LB):
  """``recurrence`` for the LSTM, with a backward pass that reuses the saved gates (faster)."""
  return _lstm_forward(unroll, weights, x_LBD, carry0, valid_LB)[:2]


def _lstm_recurrence_fwd(unroll, weights, x_LBD, carry0, valid_LB):
  y_LBH, final, acts_LBG, c_LBH = _lstm_forward(unroll, weights, x_LBD, carry0, valid_LB)
  return (y_LBH, final), (weights, x_LBD, carry0, y_LBH, acts_LBG, c_LBH, valid_LB)


def _lstm_dgates(dh_BH, dc_BH, dy_BH, acts_BG, c_prev_BH, tanh_c_BH):
  """Pre-activation gate gradients [B, 4H] (PyTorch's gate order) and dc_prev."""
  i_BH, f_BH, g_BH, o_BH = jnp.split(acts_BG, 4, axis=-1)
  dht_BH = dh_BH + dy_BH
  dct_BH = dc_BH + dht_BH * o_BH * (1.0 - tanh_c_BH * tanh_c_BH)
  dgates_BG = jnp.concatenate([dct_BH * g_BH * i_BH * (1.0 - i_BH),
                               dct_BH * c_prev_BH * f_BH * (1.0 - f_BH),
                               dct_BH * i_BH * (1.0 - g_BH * g_BH),
                               dht_BH * tanh_c_BH * o_BH * (1.0 - o_BH)], axis=-1)
  return dgates_BG, dct_BH * f_BH


def _lstm_recurrence_bwd(unroll, res, cotangents):
  (w_x_DG, w_h_HG, b_x_G, b_h_G), x_LBD, carry0, y_LBH, acts_LBG, c_LBH, valid_LB = res
  dy_LBH, dfinal = cotangents
  dtype = w_h_HG.dtype
  w_h_GH = w_h_HG.T
  # The valid steps are a prefix of each row, so at every valid step the previous carry is the
  # previous step's output (or the initial carry); invalid steps get zero gate gradients.
  h_prev_LBH = jnp.concatenate([carry0[0][None], y_LBH[:-1]], axis=0)
  c_prev_LBH = jnp.concatenate([carry0[1][None], c_LBH[:-1]], axis=0)

  def body(dcarry, inputs):
    dh_BH, dc_BH = dcarry
    acts_BG, c_BH, c_prev_BH, dy_BH, valid_B = inputs
    dy_BH = dy_BH.astype(jnp.float32)
    if valid_B is not None:
      dy_BH = jnp.where(valid_B[:, None], dy_BH, 0.0)
    dgates_BG, dc_prev = _lstm_dgates(dh_BH, dc_BH, dy_BH, acts_BG, c_prev_BH, jnp.tanh(c_BH))
    if valid_B is not None:  # past the end the carry's gradient passes through unchanged
      dgates_BG = jnp.where(valid_B[:, None], dgates_BG, 0.0)
      dc_prev = jnp.where(valid_B[:, None], dc_prev, dc_BH)
    dgates_BG = dgates_BG.astype(dtype)
    dh_prev = jnp.dot(dgates_BG, w_h_GH).astype(jnp.float32)
    if valid_B is not None:
      dh_prev = dh_prev + jnp.where(valid_B[:, None], 0.0, dh_BH)
    return (dh_prev, dc_prev), dgates_BG

  dfinal = tuple(jnp.asarray(t, jnp.float32) for t in dfinal)
  dcarry0, dg_LBG = jax.lax.scan(body, dfinal, (acts_LBG, c_LBH, c_prev_LBH, dy_LBH, valid_LB),
                                 reverse=True, unroll=unroll)
  steps, batch, d = x_LBD.shape
  x_2d = x_LBD.reshape(steps * batch, d)
  h_2d = h_prev_LBH.astype(dtype).reshape(steps * batch, -1)
  dg_2d = dg_LBG.reshape(steps * batch, -1)
  db_G = jnp.sum(dg_2d.astype(jnp.float32), axis=0)
  dw_x, dw_h = _weight_grads(x_2d, dg_2d, h_2d, dg_2d)
  grads = (dw_x.astype(w_x_DG.dtype), dw_h.astype(dtype), db_G.astype(b_x_G.dtype),
           db_G.astype(b_h_G.dtype))
  dx_LBD = jnp.dot(dg_2d, w_x_DG.T).reshape(steps, batch, d).astype(x_LBD.dtype)
  return grads, dx_LBD, dcarry0, None


lstm_recurrence.defvjp(_lstm_recurrence_fwd, _lstm_recurrence_bwd)


def _gru_forward(unroll, weights, x_LBD, carry0, valid_LB):
  """The GRU scan saving its gates: (y_LBH, final, acts_LBG = [r, z, n, hn] per step).

  hn = W_hn h + b_hn, the hidden share the reset gate multiplies. r and z go through one tanh
  (sigmoid(z) = (1 + tanh(z / 2)) / 2, the 1/2 folded into the weights).
  """
  w_x_DG, w_h_HG, b_x_G, b_h_G = weights
  hidden = w_h_HG.shape[0]
  is_n_G = jnp.arange(3 * hidden) // hidden == 2
  scale_G = jnp.where(is_n_G, 1.0, 0.5)
  w_x_DG = w_x_DG * scale_G[None].astype(w_x_DG.dtype)
  w_h_HG = w_h_HG * jnp.where(is_n_G, 1.0, 0.5)[None].astype(w_h_HG.dtype)
  b_x_G = b_x_G.astype(jnp.float32) * scale_G
  b_h_G = b_h_G.astype(jnp.float32) * scale_G

  def body(carry, inputs):
    (h_BH,) = carry
    x_BD, valid_B = inputs
    gx_BG = jnp.dot(x_BD, w_x_DG).astype(jnp.float32) + b_x_G[None]
    gh_BG = jnp.dot(h_BH.astype(w_h_HG.dtype), w_h_HG).astype(jnp.float32) + b_h_G[None]
    rz_B2H = 0.5 * jnp.tanh(gx_BG[:, :2 * hidden] + gh_BG[:, :2 * hidden]) + 0.5
    r_BH, z_BH = rz_B2H[:, :hidden], rz_B2H[:, hidden:]
    hn_BH = gh_BG[:, 2 * hidden:]
    n_BH = jnp.tanh(gx_BG[:, 2 * hidden:] + r_BH * hn_BH)
    h_new = (1.0 - z_BH) * n_BH + z_BH * h_BH
    new, y_BH = _masked((h_new,), h_new, carry, valid_B)
    return new, (y_BH, jnp.concatenate([rz_B2H, n_BH, hn_BH], axis=-1))

  final, (y_LBH, acts_LBG) = jax.lax.scan(body, carry0, (x_LBD, valid_LB), unroll=unroll)
  return y_LBH, final, acts_LBG


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def gru_recurrence(unroll: int, weights, x_LBD, carry0, valid_LB):
  """``recurrence`` for the GRU, with a backward pass that reuses the saved gates."""
  return _gru_forward(unroll, weights, x_LBD, carry0, valid_LB)[:2]


def _gru_recurrence_fwd(unroll, weights, x_LBD, carry0, valid_LB):
  y_LBH, final, acts_LBG = _gru_forward(unroll, weights, x_LBD, carry0, valid_LB)
  return (y_LBH, final), (weights, x_LBD, carry0, y_LBH, acts_LBG, valid_LB)


def _gru_recurrence_bwd(unroll, res, cotangents):
  (w_x_DG, w_h_HG, b_x_G, b_h_G), x_LBD, carry0, y_LBH, acts_LBG, valid_LB = res
  dy_LBH, dfinal = cotangents
  dtype = w_h_HG.dtype
  w_h_GH = w_h_HG.T
  # Valid steps are a prefix of each row: there the previous carry is the previous output.
  h_prev_LBH = jnp.concatenate([carry0[0][None], y_LBH[:-1]], axis=0)

  def body(dcarry, inputs):
    (dh_BH,) = dcarry
    acts_BG, h_prev_BH, dy_BH, valid_B = inputs
    r_BH, z_BH, n_BH, hn_BH = jnp.split(acts_BG, 4, axis=-1)
    dy_BH = dy_BH.astype(jnp.float32)
    if valid_B is not None:
      dy_BH = jnp.where(valid_B[:, None], dy_BH, 0.0)
    dht_BH = dh_BH + dy_BH
    dn_BH = dht_BH * (1.0 - z_BH) * (1.0 - n_BH * n_BH)
    dr_BH = dn_BH * hn_BH * r_BH * (1.0 - r_BH)
    dz_BH = dht_BH * (h_prev_BH - n_BH) * z_BH * (1.0 - z_BH)
    dgx_BG = jnp.concatenate([dr_BH, dz_BH, dn_BH], axis=-1)
    dgh_BG = jnp.concatenate([dr_BH, dz_BH, dn_BH * r_BH], axis=-1)
    dh_keep = dht_BH * z_BH
    if valid_B is not None:  # past the end the carry's gradient passes through unchanged
      dgx_BG = jnp.where(valid_B[:, None], dgx_BG, 0.0)
      dgh_BG = jnp.where(valid_B[:, None], dgh_BG, 0.0)
      dh_keep = jnp.where(valid_B[:, None], dh_keep, dh_BH)
    dgx_BG, dgh_BG = dgx_BG.astype(dtype), dgh_BG.astype(dtype)
    dh_prev = dh_keep + jnp.dot(dgh_BG, w_h_GH).astype(jnp.float32)
    return (dh_prev,), (dgx_BG, dgh_BG)

  dfinal = tuple(jnp.asarray(t, jnp.float32) for t in dfinal)
  dcarry0, (dgx_LBG, dgh_LBG) = jax.lax.scan(body, dfinal, (acts_LBG, h_prev_LBH, dy_LBH, valid_LB),
                                             reverse=True, unroll=unroll)
  steps, batch, d = x_LBD.shape
  x_2d = x_LBD.reshape(steps * batch, d)
  h_2d = h_prev_LBH.astype(dtype).reshape(steps * batch, -1)
  dgx_2d = dgx_LBG.reshape(steps * batch, -1)
  dgh_2d = dgh_LBG.reshape(steps * batch, -1)
  dw_x, dw_h = _weight_grads(x_2d, dgx_2d, h_2d, dgh_2d)
  grads = (dw_x.astype(w_x_DG.dtype), dw_h.astype(dtype),
           jnp.sum(dgx_2d.astype(jnp.float32), axis=0).astype(b_x_G.dtype),
           jnp.sum(dgh_2d.astype(jnp.float32), axis=0).astype(b_h_G.dtype))
  dx_LBD = jnp.dot(dgx_2d, w_x_DG.T).reshape(steps, batch, d).astype(x_LBD.dtype)
  return grads, dx_LBD, dcarry0, None


gru_recurrence.defvjp(_gru_recurrence_fwd, _gru_recurrence_bwd)


def _elman_forward(relu, unroll, weights, x_LBD, carry0, valid_LB):
  """The simple RNN scan, h' = act([x, h] [W_ih | W_hh]^T + b): (y_LBH, final)."""
  w_x_DG, w_h_HG, b_x_G, b_h_G = weights
  w_KG = jnp.concatenate([w_x_DG, w_h_HG], axis=0)
  b_G = (b_x_G + b_h_G).astype(jnp.float32)

  def body(carry, inputs):
    x_BD, valid_B = inputs
    xh_BK = jnp.concatenate([x_BD, carry[0].astype(w_KG.dtype)], axis=-1)
    z_BH = jnp.dot(xh_BK, w_KG).astype(jnp.float32) + b_G[None]
    h_BH = jax.nn.relu(z_BH) if relu else jnp.tanh(z_BH)
    new, y_BH = _masked((h_BH,), h_BH, carry, valid_B)
    return new, y_BH

  final, y_LBH = jax.lax.scan(body, carry0, (x_LBD, valid_LB), unroll=unroll)
  return y_LBH, final


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def elman_recurrence(relu: bool, unroll: int, weights, x_LBD, carry0, valid_LB):
  """``recurrence`` for the simple RNN: the backward needs only the outputs (act' from h)."""
  return _elman_forward(relu, unroll, weights, x_LBD, carry0, valid_LB)


def _elman_recurrence_fwd(relu, unroll, weights, x_LBD, carry0, valid_LB):
  y_LBH, final = _elman_forward(relu, unroll, weights, x_LBD, carry0, valid_LB)
  return (y_LBH, final), (weights, x_LBD, carry0, y_LBH, valid_LB)


def _elman_recurrence_bwd(relu, unroll, res, cotangents):
  (w_x_DG, w_h_HG, b_x_G, b_h_G), x_LBD, carry0, y_LBH, valid_LB = res
  dy_LBH, dfinal = cotangents
  dtype = w_h_HG.dtype
  w_h_GH = w_h_HG.T
  # Valid steps are a prefix of each row: there the previous carry is the previous output.
  h_prev_LBH = jnp.concatenate([carry0[0][None], y_LBH[:-1]], axis=0)

  def body(dcarry, inputs):
    (dh_BH,) = dcarry
    h_BH, dy_BH, valid_B = inputs
    dy_BH = dy_BH.astype(jnp.float32)
    if valid_B is not None:
      dy_BH = jnp.where(valid_B[:, None], dy_BH, 0.0)
    dact_BH = (h_BH > 0.0).astype(jnp.float32) if relu else 1.0 - h_BH * h_BH
    dz_BH = (dh_BH + dy_BH) * dact_BH
    if valid_B is not None:
      dz_BH = jnp.where(valid_B[:, None], dz_BH, 0.0)
    dz_BH = dz_BH.astype(dtype)
    dh_prev = jnp.dot(dz_BH, w_h_GH).astype(jnp.float32)
    if valid_B is not None:  # past the end the carry's gradient passes through unchanged
      dh_prev = dh_prev + jnp.where(valid_B[:, None], 0.0, dh_BH)
    return (dh_prev,), dz_BH

  dfinal = tuple(jnp.asarray(t, jnp.float32) for t in dfinal)
  dcarry0, dz_LBH = jax.lax.scan(body, dfinal, (y_LBH, dy_LBH, valid_LB), reverse=True, unroll=unroll)
  steps, batch, d = x_LBD.shape
  x_2d = x_LBD.reshape(steps * batch, d)
  h_2d = h_prev_LBH.astype(dtype).reshape(steps * batch, -1)
  dz_2d = dz_LBH.reshape(steps * batch, -1)
  db_G = jnp.sum(dz_2d.astype(jnp.float32), axis=0)
  dw_x, dw_h = _weight_grads(x_2d, dz_2d, h_2d, dz_2d)
  grads = (dw_x.astype(w_x_DG.dtype), dw_h.astype(dtype), db_G.astype(b_x_G.dtype),
           db_G.astype(b_h_G.dtype))
  dx_LBD = jnp.dot(dz_2d, w_x_DG.T).reshape(steps, batch, d).astype(x_LBD.dtype)
  return grads, dx_LBD, dcarry0, None


elman_recurrence.defvjp(_elman_recurrence_fwd, _elman_recurrence_bwd)


def _autodiff_recurrence(combine, fused, unroll, weights, x_LBD, carry0, valid_LB):
  """The plain scan, differentiated by JAX (the reference for the hand-written backward passes)."""
  y_LBH, final, _, _ = _forward(combine, fused, unroll, weights, x_LBD, carry0, valid_LB)
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
  _, _, combine, fused = cells.KINDS[kind]
  if reverse:
    x_BLD = reverse_prefix_BL(x_BLD, lengths_B)
  valid_LB = None
  if lengths_B is not None:
    valid_LB = jnp.arange(x_BLD.shape[1])[:, None] < lengths_B[None, :]
  x_LBD = jnp.swapaxes(x_BLD, 0, 1).astype(dtype)
  weights = (params["weight_ih"].T, params["weight_hh"].T, params["bias_ih"], params["bias_hh"])
  weights = tuple(w.astype(dtype) for w in weights)
  if implementation == "autodiff":
    y_LBH, final = _autodiff_recurrence(combine, fused, unroll, weights, x_LBD, carry0, valid_LB)
  elif kind == "lstm":
    y_LBH, final = lstm_recurrence(unroll, weights, x_LBD, carry0, valid_LB)
  elif kind == "gru":
    y_LBH, final = gru_recurrence(unroll, weights, x_LBD, carry0, valid_LB)
  else:
    y_LBH, final = elman_recurrence(kind == "rnn_relu", unroll, weights, x_LBD, carry0, valid_LB)
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
    gates, n_carry, _, _ = cells.KINDS[kind]
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
