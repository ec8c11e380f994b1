"""A causal depthwise convolution over time, with the state that decoding carries (Mamba's and
Hawk's short convolution).

  y_t = bias + sum_{k=0..Z} kernel_k * x_{t - Z + k}        (each channel separately)

kernel is [Z + 1, H] (Z = d_conv - 1 past inputs and the current one; tap Z multiplies x_t),
bias [H]. Inputs before position 0 are the carried state ``state_BZH`` (the last Z inputs of the
previous call), zeros at a sequence's start, as PyTorch's ``Conv1d(padding=d_conv - 1)`` truncated
to the first L outputs computes them. An output never reads a later input, so right padding changes
nothing before a sequence's end; the state after a call is the Z inputs ending at each length - 1.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def zero_state(batch: int, d_conv: int, width: int):
  """The state before a sequence's first input: [B, Z, H] float32 zeros."""
  return jnp.zeros((batch, d_conv - 1, width), jnp.float32)


def check_state(name, state, recurrent_shape, batch, d_conv, width):
  """ValueError unless ``state`` (None, or a block's (recurrent state, convolution state) pair) has
  the shapes the block carries: ``recurrent_shape`` and [B, d_conv - 1, width]."""
  if state is None:
    return
  want = (tuple(recurrent_shape), (batch, d_conv - 1, width))
  got = tuple(tuple(jnp.shape(s)) for s in state)
  if got != want:
    raise ValueError(f"{name} state must have shapes {want} (recurrence, convolution); "
                     f"got {got}")


def _with_past(x_BLH, state_BZH):
  """[state, x] along time: [B, Z + L, H] in float32."""
  return jnp.concatenate([state_BZH.astype(jnp.float32), x_BLH.astype(jnp.float32)], axis=1)


def causal_conv(x_BLH, kernel, bias_H, state_BZH):
  """y_BLH (float32) from x_BLH and the Z inputs before it (``state_BZH``, None: zeros)."""
  taps = kernel.shape[0]
  if state_BZH is None:
    state_BZH = zero_state(x_BLH.shape[0], taps, x_BLH.shape[-1])
  xp = _with_past(x_BLH, state_BZH)
  length = x_BLH.shape[1]
  kernel_1KH = kernel.astype(jnp.float32)[:, None, None]
  # Z + 1 shifted multiply-adds: with 4 taps cheaper than a convolution op, and plainly causal.
  y_BLH = sum(xp[:, k:k + length] * kernel_1KH[k] for k in range(taps))
  return y_BLH + bias_H.astype(jnp.float32)[None, None]


def next_state(x_BLH, state_BZH, lengths_B, d_conv: int):
  """The state after x: the Z inputs at positions length - Z .. length - 1 (from ``state_BZH``
  where those are negative; lengths None: the last Z)."""
  z = d_conv - 1
  if state_BZH is None:
    state_BZH = zero_state(x_BLH.shape[0], d_conv, x_BLH.shape[-1])
  xp = _with_past(x_BLH, state_BZH)
  if lengths_B is None:
    return xp[:, xp.shape[1] - z:]
  # Position length - Z + j of x sits at index length + j of [state, x].
  return jax.vmap(lambda row, end: jax.lax.dynamic_slice_in_dim(row, end, z, axis=0))(
      xp, lengths_B)


def conv_step(x_BH, kernel, bias_H, state_BZH):
  """One step: (y_BH, next state) from the current input and the Z before it."""
  window = _with_past(x_BH[:, None], state_BZH)  # [B, Z + 1, H]: the inputs the output reads
  y_BH = jnp.sum(window * kernel.astype(jnp.float32)[None], axis=1) + bias_H.astype(
      jnp.float32)[None]
  return y_BH, window[:, 1:]


def sequential(cell, kernel, bias_H, x_BLH, conv_BZH, state, lengths_B):
  """The convolution followed by a recurrent ``cell(state, conv_BH) -> (state, y_BH)``, one time
  step after another (a plain ``lax.scan``: the families' sequential reference and their decoding
  form). Past each length nothing changes and y is zero. Returns (y_BLH, cell state, conv state)."""
  if conv_BZH is None:
    conv_BZH = zero_state(x_BLH.shape[0], kernel.shape[0], x_BLH.shape[-1])

  def one_step(carry, inputs):
    state, conv_BZH = carry
    x_BH, t = inputs
    conv_BH, new_conv_BZH = conv_step(x_BH, kernel, bias_H, conv_BZH)
    new_state, y_BH = cell(state, conv_BH)
    if lengths_B is None:
      return (new_state, new_conv_BZH), y_BH
    live_B = t < lengths_B
    keep = lambda new, old: jnp.where(  # noqa: E731
        live_B.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)
    carry = jax.tree_util.tree_map(keep, (new_state, new_conv_BZH), (state, conv_BZH))
    return carry, keep(y_BH, jnp.zeros_like(y_BH))

  steps = jnp.arange(x_BLH.shape[1])
  (state, conv_BZH), y_LBH = jax.lax.scan(one_step, (state, conv_BZH),
                                          (jnp.swapaxes(x_BLH, 0, 1), steps))
  return jnp.swapaxes(y_LBH, 0, 1), state, conv_BZH
