"""The time loops of the classic cells with hand-written backward passes (run by ``layer.RNN``).

``elman_recurrence``, ``lstm_recurrence`` and ``gru_recurrence`` run one direction of one layer over
time-major inputs ``x_LBD``. Forward: one matmul per step [x_t, h] [W_ih | W_hh]^T (two for the GRU,
whose reset gate needs W_hn h apart), saving what the backward needs (the simple RNN: its outputs;
the LSTM and GRU: their gate-gradient factors), so the backward loop recomputes no matmul and no
transcendental: per step only the gate gradients and the one unavoidable matmul dh_prev = dg W_hh;
the weight and input gradients are big matmuls over all steps after it, in the dot form XLA:CPU runs
fastest (``_weight_grads``). The LSTM's and GRU's backward passes write dg over the saved factors in
place: XLA:CPU page-faults fresh temporary memory on every call, so a buffer less is time saved.
``autodiff_recurrence`` is the plain scan differentiated by JAX, the reference the tests compare the
hand-written passes against. ``recurrence`` is the one entry the layer calls: every form returns
batch-major y (the LSTM's loop writes it so; the others' loops scan time-major, and their y is
transposed once, as the cotangent is).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from attnlab.models.rnn import cells

def _masked(new, y_BH, carry, valid_B):
  """Past a sequence's end the carry is frozen and the output is zero."""
  if valid_B is None:
    return new, y_BH
  new = tuple(jnp.where(valid_B[:, None], n, c) for n, c in zip(new, carry))
  return new, jnp.where(valid_B[:, None], y_BH, 0.0)


def _project(fused, w_x_DW, w_h_HW, b_x_W, b_h_W, x_BD, h_BH):
  """Pre-activations (gx, gh) of one step; fused: one matmul [x, h] [w_x; w_h] and gh = None."""
  h_BH = h_BH.astype(w_h_HW.dtype)
  if fused:
    xh_BI = jnp.concatenate([x_BD, h_BH], axis=-1)
    w_IW = jnp.concatenate([w_x_DW, w_h_HW], axis=0)  # loop-invariant: XLA hoists it
    return (jnp.dot(xh_BI, w_IW) + (b_x_W + b_h_W)[None]).astype(jnp.float32), None
  gx_BW = jnp.dot(x_BD, w_x_DW) + b_x_W[None]
  gh_BW = jnp.dot(h_BH, w_h_HW) + b_h_W[None]
  return gx_BW.astype(jnp.float32), gh_BW.astype(jnp.float32)


def _forward(combine, fused, unroll, weights, x_LBD, carry0, valid_LB):
  """The plain scan: (y_LBH, final carry, carries before each step, (gx_LBW, gh_LBW or None))."""

  def body(carry, inputs):
    x_BD, valid_B = inputs
    gx_BW, gh_BW = _project(fused, *weights, x_BD, carry[0])
    new, y_BH = _masked(*combine(carry, gx_BW, gh_BW), carry, valid_B)
    return new, (y_BH, carry, (gx_BW, gh_BW))

  final, (y_LBH, prev, pre) = jax.lax.scan(body, carry0, (x_LBD, valid_LB), unroll=unroll)
  return y_LBH, final, prev, pre


def _weight_grads(x_2d, dgx_2d, h_2d, dgh_2d):
  """x^T dgx and h^T dgh, [I, W] each, over all (time, batch) rows.

  The barrier keeps XLA from folding the caller's transpose back to PyTorch's [W, I] layout into the
  dot: XLA:CPU runs that transposed-operand form (contracting the leading dim into a [W, I] result)
  about 1.7x (W_hh) to 4x (W_ih) slower than this one plus a small transpose.
  """
  return jax.lax.optimization_barrier((jnp.dot(x_2d.T, dgx_2d), jnp.dot(h_2d.T, dgh_2d)))


def _after_loop_grads(w_x_DW, b_x_W, b_h_W, dtype, x_LBD, h_prev_LBH, dgx_LBW, dgh_LBW):
  """Parameter and input gradients from the per-step gate gradients, as big matmuls over all steps.

  ``dgx`` flows to W_ih, b_ih and x; ``dgh`` to W_hh and b_hh (the same array except for the GRU).
  """
  steps, batch, d = x_LBD.shape
  x_2d = x_LBD.reshape(steps * batch, d)
  h_2d = h_prev_LBH.astype(dtype).reshape(steps * batch, -1)
  dgx_2d = dgx_LBW.reshape(steps * batch, -1)
  dgh_2d = dgh_LBW.reshape(steps * batch, -1)
  dw_x, dw_h = _weight_grads(x_2d, dgx_2d, h_2d, dgh_2d)
  grads = (dw_x.astype(w_x_DW.dtype), dw_h.astype(dtype),
           jnp.sum(dgx_2d.astype(jnp.float32), axis=0).astype(b_x_W.dtype),
           jnp.sum(dgh_2d.astype(jnp.float32), axis=0).astype(b_h_W.dtype))
  dx_LBD = jnp.dot(dgx_2d, w_x_DW.T).reshape(steps, batch, d).astype(x_LBD.dtype)
  return grads, dx_LBD


def _lstm_forward(unroll, weights, x_LBD, carry0, valid_LB):
  """The LSTM scan saving the factors of its gate gradients: (y_BLH, final, p_LBW, fq_LB2H).

  y is written batch-major step by step, the layout the caller wants: no transpose of y, nor of its
  cotangent in the backward pass.

  With dct the gradient reaching c_t and dht the one reaching h_t, the gate gradients are
  [dct, dct, dct, dht] * p, p = [g i (1-i), c_prev f (1-f), i (1-g^2), tanh(c) o (1-o)], and
  dct = dc + dht q, dc_prev = dct f, fq = [f, q = o (1-tanh(c)^2)]: the backward loop is a few
  multiply-adds per element and one matmul, no transcendental.
  """
  w_x_DW, w_h_HW, b_x_W, b_h_W = weights
  # One transcendental per gate: sigmoid(z) = (1 + tanh(z / 2)) / 2, with the 1/2 folded into the
  # weights, so every gate column is acts = scale tanh(z') + shift (1/2 and 1/2, or 1 and 0 for g).
  hidden = w_h_HW.shape[0]
  is_g_W = jnp.arange(4 * hidden) // hidden == 2
  scale_W = jnp.where(is_g_W, 1.0, 0.5)
  shift_W = jnp.where(is_g_W, 0.0, 0.5)
  w_IW = (jnp.concatenate([w_x_DW, w_h_HW], axis=0) * scale_W[None].astype(w_h_HW.dtype))
  b_W = (b_x_W + b_h_W).astype(jnp.float32) * scale_W

  steps, batch, _ = x_LBD.shape

  def body(state, inputs):
    carry, y_BLH = state
    h_BH, c_BH = carry
    x_BD, valid_B, t = inputs
    xh_BI = jnp.concatenate([x_BD, h_BH.astype(w_IW.dtype)], axis=-1)
    z_BW = jnp.dot(xh_BI, w_IW).astype(jnp.float32) + b_W[None]
    acts_BW = scale_W[None] * jnp.tanh(z_BW) + shift_W[None]
    i_BH, f_BH, g_BH, o_BH = jnp.split(acts_BW, 4, axis=-1)
    c_new = f_BH * c_BH + i_BH * g_BH
    tanh_c = jnp.tanh(c_new)
    h_new = o_BH * tanh_c
    p_BW = jnp.concatenate([g_BH * i_BH * (1.0 - i_BH), c_BH * f_BH * (1.0 - f_BH),
                            i_BH * (1.0 - g_BH * g_BH), tanh_c * o_BH * (1.0 - o_BH)], axis=-1)
    fq_B2H = jnp.concatenate([f_BH, o_BH * (1.0 - tanh_c * tanh_c)], axis=-1)
    new, y_BH = _masked((h_new, c_new), h_new, carry, valid_B)
    y_BLH = jax.lax.dynamic_update_index_in_dim(y_BLH, y_BH.astype(y_BLH.dtype), t, 1)
    return (new, y_BLH), (p_BW, fq_B2H)

  y_BLH = jnp.zeros((batch, steps, hidden), x_LBD.dtype)
  (final, y_BLH), (p_LBW, fq_LB2H) = jax.lax.scan(
      body, (carry0, y_BLH), (x_LBD, valid_LB, jnp.arange(steps)), unroll=unroll)
  return y_BLH, final, p_LBW, fq_LB2H


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def lstm_recurrence(unroll: int, weights, x_LBD, carry0, valid_LB):
  """(y_BLH, final carry) of the LSTM, hand-written backward; the loop writes y batch-major."""
  return _lstm_forward(unroll, weights, x_LBD, carry0, valid_LB)[:2]


def _lstm_recurrence_fwd(unroll, weights, x_LBD, carry0, valid_LB):
  y_BLH, final, p_LBW, fq_LB2H = _lstm_forward(unroll, weights, x_LBD, carry0, valid_LB)
  return (y_BLH, final), (weights, x_LBD, carry0, y_BLH, p_LBW, fq_LB2H, valid_LB)


def _lstm_recurrence_bwd(unroll, res, cotangents):
  (w_x_DW, w_h_HW, b_x_W, b_h_W), x_LBD, carry0, y_BLH, p_LBW, fq_LB2H, valid_LB = res
  dy_BLH, dfinal = cotangents
  dtype = w_h_HW.dtype
  steps, hidden = x_LBD.shape[0], w_h_HW.shape[0]
  w_h_WH = w_h_HW.T
  # The valid steps are a prefix of each row, so at every valid step the previous carry is the
  # previous step's output (or the initial carry); invalid steps get zero gate gradients.
  h_prev_LBH = jnp.concatenate([carry0[0][None].astype(y_BLH.dtype),
                                jnp.swapaxes(y_BLH[:, :-1], 0, 1)], axis=0)

  def body(i, state):
    # dg_t overwrites p_t in the same buffer: no second [L, B, 4H] array (XLA:CPU pays for fresh
    # memory in page faults). XLA updates in place only if no other fusion reads p_t: so the matmul
    # reads dg_t back from the buffer, dg_t has no select and no [B, 4, H] reshape (each of these
    # made XLA recompute dg_t elsewhere and copy the buffer every step). [dct, dct, dct, dht] as one
    # concatenation, not a select between two tiles (which XLA:CPU ran slower).
    dh_BH, dc_BH, buf_LBW = state
    t = steps - 1 - i
    p_BW, fq_B2H = buf_LBW[t], fq_LB2H[t]
    dy_BH = jax.lax.dynamic_index_in_dim(dy_BLH, t, 1, keepdims=False).astype(jnp.float32)
    f_BH, q_BH = fq_B2H[:, :hidden], fq_B2H[:, hidden:]
    dht_BH = dh_BH + dy_BH
    dct_BH = dc_BH + dht_BH * q_BH
    dc_prev = dct_BH * f_BH
    if valid_LB is not None:  # past the end: zero gate gradients, the carry's passes through
      valid_B1 = valid_LB[t][:, None]
      dht_BH = jnp.where(valid_B1, dht_BH, 0.0)
      dct_BH = jnp.where(valid_B1, dct_BH, 0.0)
      dc_prev = jnp.where(valid_B1, dc_prev, dc_BH)
    # dg_t = p_t * 0 there (p is finite for finite inputs), so it needs no select of its own.
    dgates_BW = p_BW * jnp.concatenate([dct_BH, dct_BH, dct_BH, dht_BH], axis=-1)
    buf_LBW = jax.lax.dynamic_update_index_in_dim(buf_LBW, dgates_BW, t, 0)
    dh_prev = jnp.dot(buf_LBW[t].astype(dtype), w_h_WH).astype(jnp.float32)
    if valid_LB is not None:
      dh_prev = dh_prev + jnp.where(valid_B1, 0.0, dh_BH)
    return dh_prev, dc_prev, buf_LBW

  dfinal = tuple(jnp.asarray(t, jnp.float32) for t in dfinal)
  dh0, dc0, dg_LBW = jax.lax.fori_loop(0, steps, body, dfinal + (p_LBW,), unroll=unroll)
  grads, dx_LBD = _after_loop_grads(w_x_DW, b_x_W, b_h_W, dtype, x_LBD, h_prev_LBH,
                                    dg_LBW.astype(dtype), dg_LBW.astype(dtype))
  return grads, dx_LBD, (dh0, dc0), None


lstm_recurrence.defvjp(_lstm_recurrence_fwd, _lstm_recurrence_bwd)


def _gru_forward(unroll, weights, x_LBD, carry0, valid_LB):
  """The GRU scan saving its gate-gradient factors: (y_LBH, final, f_LBW, z_LBH).

  With dht the gradient reaching h_t and a = (1-z)(1-n^2): dr = dht a hn r(1-r), dz = dht (h-n)
  z(1-z), dn = dht a, the reset-gated hidden share's dn r = dht a r, and dh_prev = dht z +
  [dr, dz, dn r] W_hh. So f = [a hn r (1-r), (h-n) z (1-z), a r, a]: every gate gradient is dht
  times a column block of f, blocks 0, 1, 2 for the hidden matmul, 0, 1, 3 for the input one.
  """
  w_x_DW, w_h_HW, b_x_W, b_h_W = weights
  hidden = w_h_HW.shape[0]
  is_n_W = jnp.arange(3 * hidden) // hidden == 2
  scale_W = jnp.where(is_n_W, 1.0, 0.5)
  w_x_DW = w_x_DW * scale_W[None].astype(w_x_DW.dtype)
  w_h_HW = w_h_HW * jnp.where(is_n_W, 1.0, 0.5)[None].astype(w_h_HW.dtype)
  b_x_W = b_x_W.astype(jnp.float32) * scale_W
  b_h_W = b_h_W.astype(jnp.float32) * scale_W

  def body(carry, inputs):
    (h_BH,) = carry
    x_BD, valid_B = inputs
    gx_BW = jnp.dot(x_BD, w_x_DW).astype(jnp.float32) + b_x_W[None]
    gh_BW = jnp.dot(h_BH.astype(w_h_HW.dtype), w_h_HW).astype(jnp.float32) + b_h_W[None]
    rz_B2H = 0.5 * jnp.tanh(gx_BW[:, :2 * hidden] + gh_BW[:, :2 * hidden]) + 0.5
    r_BH, z_BH = rz_B2H[:, :hidden], rz_B2H[:, hidden:]
    hn_BH = gh_BW[:, 2 * hidden:]
    n_BH = jnp.tanh(gx_BW[:, 2 * hidden:] + r_BH * hn_BH)
    h_new = (1.0 - z_BH) * n_BH + z_BH * h_BH
    a_BH = (1.0 - z_BH) * (1.0 - n_BH * n_BH)
    f_BW = jnp.concatenate([a_BH * hn_BH * r_BH * (1.0 - r_BH), (h_BH - n_BH) * z_BH * (1.0 - z_BH),
                            a_BH * r_BH, a_BH], axis=-1)
    new, y_BH = _masked((h_new,), h_new, carry, valid_B)
    return new, (y_BH, f_BW, z_BH)

  final, (y_LBH, f_LBW, z_LBH) = jax.lax.scan(body, carry0, (x_LBD, valid_LB), unroll=unroll)
  return y_LBH, final, f_LBW, z_LBH


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def gru_recurrence(unroll: int, weights, x_LBD, carry0, valid_LB):
  """``recurrence`` for the GRU, with a backward pass from saved gate-gradient factors."""
  return _gru_forward(unroll, weights, x_LBD, carry0, valid_LB)[:2]


def _gru_recurrence_fwd(unroll, weights, x_LBD, carry0, valid_LB):
  y_LBH, final, f_LBW, z_LBH = _gru_forward(unroll, weights, x_LBD, carry0, valid_LB)
  return (y_LBH, final), (weights, x_LBD, carry0, y_LBH, f_LBW, z_LBH, valid_LB)


def _gru_recurrence_bwd(unroll, res, cotangents):
  (w_x_DW, w_h_HW, b_x_W, b_h_W), x_LBD, carry0, y_LBH, f_LBW, z_LBH, valid_LB = res
  dy_LBH, dfinal = cotangents
  dtype = w_h_HW.dtype
  steps, batch, d = x_LBD.shape
  hidden = w_h_HW.shape[0]
  w_h_WH = w_h_HW.T
  # Valid steps are a prefix of each row: there the previous carry is the previous output.
  h_prev_LBH = jnp.concatenate([carry0[0][None], y_LBH[:-1]], axis=0)

  def body(i, state):
    # The gate gradients overwrite the factors in place, the matmul reads them back (see the LSTM).
    dh_BH, buf_LBW = state
    t = steps - 1 - i
    dht_BH = dh_BH + dy_LBH[t].astype(jnp.float32)
    dh_keep = dht_BH * z_LBH[t]
    if valid_LB is not None:  # past the end: zero gate gradients, the carry's passes through
      valid_B1 = valid_LB[t][:, None]
      dht_BH = jnp.where(valid_B1, dht_BH, 0.0)
      dh_keep = jnp.where(valid_B1, dh_keep, dh_BH)
    dgates_BW = buf_LBW[t] * jnp.tile(dht_BH, (1, 4))
    buf_LBW = jax.lax.dynamic_update_index_in_dim(buf_LBW, dgates_BW, t, 0)
    dgh_BW = buf_LBW[t][:, :3 * hidden].astype(dtype)
    return dh_keep + jnp.dot(dgh_BW, w_h_WH).astype(jnp.float32), buf_LBW

  dh0, d_LBW = jax.lax.fori_loop(0, steps, body, (jnp.asarray(dfinal[0], jnp.float32), f_LBW),
                                 unroll=unroll)
  # Input gradients take blocks 0, 1, 3 of d, the hidden ones 0, 1, 2: one matmul over all four
  # blocks each, then the columns (cheaper than copying a [L*B, 3H] slice of d for each).
  d_2d = d_LBW.reshape(steps * batch, 4 * hidden).astype(dtype)
  x_2d = x_LBD.reshape(steps * batch, d)
  h_2d = h_prev_LBH.astype(dtype).reshape(steps * batch, hidden)
  dw_x4, dw_h4 = _weight_grads(x_2d, d_2d, h_2d, d_2d)
  db4 = jnp.sum(d_2d.astype(jnp.float32), axis=0)
  x_cols = jnp.concatenate([jnp.arange(2 * hidden), jnp.arange(3 * hidden, 4 * hidden)])
  grads = (dw_x4[:, x_cols].astype(w_x_DW.dtype), dw_h4[:, :3 * hidden].astype(dtype),
           db4[x_cols].astype(b_x_W.dtype), db4[:3 * hidden].astype(b_h_W.dtype))
  w_x4_DW = jnp.concatenate([w_x_DW[:, :2 * hidden], jnp.zeros((d, hidden), w_x_DW.dtype),
                             w_x_DW[:, 2 * hidden:]], axis=1)
  dx_LBD = jnp.dot(d_2d, w_x4_DW.T).reshape(steps, batch, d).astype(x_LBD.dtype)
  return grads, dx_LBD, (dh0,), None


gru_recurrence.defvjp(_gru_recurrence_fwd, _gru_recurrence_bwd)


def _elman_forward(relu, unroll, weights, x_LBD, carry0, valid_LB):
  """The simple RNN scan, h' = act([x, h] [W_ih | W_hh]^T + b): (y_LBH, final)."""
  w_x_DW, w_h_HW, b_x_W, b_h_W = weights
  w_IW = jnp.concatenate([w_x_DW, w_h_HW], axis=0)
  b_W = (b_x_W + b_h_W).astype(jnp.float32)

  def body(carry, inputs):
    x_BD, valid_B = inputs
    xh_BI = jnp.concatenate([x_BD, carry[0].astype(w_IW.dtype)], axis=-1)
    z_BH = jnp.dot(xh_BI, w_IW).astype(jnp.float32) + b_W[None]
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
  (w_x_DW, w_h_HW, b_x_W, b_h_W), x_LBD, carry0, y_LBH, valid_LB = res
  dy_LBH, dfinal = cotangents
  dtype = w_h_HW.dtype
  w_h_WH = w_h_HW.T
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
    dh_prev = jnp.dot(dz_BH, w_h_WH).astype(jnp.float32)
    if valid_B is not None:  # past the end the carry's gradient passes through unchanged
      dh_prev = dh_prev + jnp.where(valid_B[:, None], 0.0, dh_BH)
    return (dh_prev,), dz_BH

  dfinal = tuple(jnp.asarray(t, jnp.float32) for t in dfinal)
  dcarry0, dz_LBH = jax.lax.scan(body, dfinal, (y_LBH, dy_LBH, valid_LB), reverse=True, unroll=unroll)
  grads, dx_LBD = _after_loop_grads(w_x_DW, b_x_W, b_h_W, dtype, x_LBD, h_prev_LBH, dz_LBH, dz_LBH)
  return grads, dx_LBD, dcarry0, None


elman_recurrence.defvjp(_elman_recurrence_fwd, _elman_recurrence_bwd)


def recurrence(kind: str, impl: str, unroll: int, weights, x_LBD, carry0, valid_LB):
  """One direction of one layer of cell ``kind`` ("fast": the hand-written backward passes;
  "reference": ``autodiff_recurrence``): (y_BLH, final carry)."""
  if impl == "fast" and kind == "lstm":
    return lstm_recurrence(unroll, weights, x_LBD, carry0, valid_LB)
  if impl == "reference":
    _, _, combine, fused = cells.KINDS[kind]
    y_LBH, final = autodiff_recurrence(combine, fused, unroll, weights, x_LBD, carry0, valid_LB)
  elif kind == "gru":
    y_LBH, final = gru_recurrence(unroll, weights, x_LBD, carry0, valid_LB)
  else:
    y_LBH, final = elman_recurrence(kind == "rnn_relu", unroll, weights, x_LBD, carry0, valid_LB)
  return jnp.swapaxes(y_LBH, 0, 1), final


def autodiff_recurrence(combine, fused, unroll, weights, x_LBD, carry0, valid_LB):
  """The plain scan, differentiated by JAX (the reference for the hand-written backward passes)."""
  y_LBH, final, _, _ = _forward(combine, fused, unroll, weights, x_LBD, carry0, valid_LB)
  return y_LBH, final
