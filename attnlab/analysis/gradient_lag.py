"""Gradient lag: how strongly the loss at the target reacts to each earlier input position.

For each example, the loss at its target position ``t`` (the last position for sequence and
regression tasks, the last masked position for per-token tasks) is differentiated with ``jax.grad``
with respect to the embedded input ``x_BLD`` (the output of the model's ``embed``/``input_proj``
layer), and the norm ``||d loss_t / d x_l||`` is averaged over examples at each distance ``t - l``.
A vanishing gradient shows as a norm that falls off with distance (the simple RNN's problem).

The embedded input is reached by intercepting the embedding layer and adding a zero offset
``delta_BLD`` to its output: the gradient with respect to ``delta`` is the gradient with respect to
the embedded input, and the model code stays untouched.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from attnlab.tasks import base

_INPUT_LAYERS = ("embed", "input_proj")  # names of SequenceModel's input layers
_INPUT_PATHS = tuple((name,) for name in _INPUT_LAYERS)  # ...directly under the top module


def target_positions(output_kind: str, mask) -> np.ndarray:
  """int[B]: the position each example's loss is read at."""
  mask = np.asarray(mask)
  if output_kind == base.PER_TOKEN:
    length = mask.shape[1]
    last = length - 1 - np.argmax(mask[:, ::-1] > 0, axis=1)
    return np.where(mask.any(axis=1), last, length - 1).astype(np.int32)
  return np.full((mask.shape[0],), -1, np.int32)  # the model reads the last position


def embedded_loss_fn(model: nn.Module, params: Any, batch: dict,
                     output_kind: str) -> tuple[Callable[[jax.Array], jax.Array], tuple]:
  """``(loss_fn(delta_BLD) -> sum over examples of the loss at each target, delta shape)``."""
  inputs, targets = jnp.asarray(batch["inputs"]), jnp.asarray(batch["targets"])
  t_B = jnp.asarray(target_positions(output_kind, batch["mask"]))
  rows_B = jnp.arange(inputs.shape[0])

  def apply(delta_BLD):
    def add_delta(next_fun, args, kwargs, context):
      out = next_fun(*args, **kwargs)
      if _is_input_layer(context):
        out = out + delta_BLD.astype(out.dtype)
      return out
    with nn.intercept_methods(add_delta):
      return model.apply({"params": params}, inputs, deterministic=True)

  def loss_fn(delta_BLD):
    out = apply(delta_BLD)
    if output_kind == base.REGRESSION:
      return jnp.sum(jnp.square(out.astype(jnp.float32) - targets.astype(jnp.float32)))
    if output_kind == base.PER_TOKEN:
      logits_BC, target_B = out[rows_B, t_B], targets[rows_B, t_B]
    else:
      logits_BC, target_B = out, targets
    logp_BC = jax.nn.log_softmax(logits_BC.astype(jnp.float32), axis=-1)
    return -jnp.sum(jnp.take_along_axis(logp_BC, target_B[:, None].astype(jnp.int32), axis=-1))

  embedded = jax.eval_shape(lambda: _embedded_shape(model, params, inputs))
  return loss_fn, embedded.shape


def _is_input_layer(context) -> bool:
  return context.method_name == "__call__" and tuple(context.module.path) in _INPUT_PATHS


def _embedded_shape(model, params, inputs):
  captured = []

  def capture(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if _is_input_layer(context):
      captured.append(out)
    return out
  with nn.intercept_methods(capture):
    model.apply({"params": params}, inputs, deterministic=True)
  if not captured:
    raise ValueError(f"model has no input layer named one of {_INPUT_LAYERS}")
  return captured[0]


def gradients(model: nn.Module, params: Any, batch: dict, output_kind: str) -> np.ndarray:
  """float[B, L, D]: ``d loss_b / d x_{b,l}`` from ``jax.grad`` (one compile)."""
  loss_fn, shape = embedded_loss_fn(model, params, batch, output_kind)
  return np.asarray(jax.jit(jax.grad(loss_fn))(jnp.zeros(shape, jnp.float32)))


def gradient_norms(model: nn.Module, params: Any, batch: dict, output_kind: str) -> np.ndarray:
  """float[B, L]: ``||d loss_b / d x_{b,l}||``."""
  g_BLD = gradients(model, params, batch, output_kind).astype(np.float64)
  return np.sqrt(np.sum(np.square(g_BLD), axis=-1))


def lag_profile(norms_BL: np.ndarray, output_kind: str, mask) -> dict:
  """Mean norm at each distance 0..max back from the target (positions after it left out)."""
  norms_BL = np.asarray(norms_BL, np.float64)
  length = norms_BL.shape[1]
  t_B = target_positions(output_kind, mask)
  t_B = np.where(t_B < 0, length - 1, t_B)
  dist_BL = t_B[:, None] - np.arange(length)[None, :]
  distances, means = [], []
  for d in range(int(dist_BL.max()) + 1):
    at_d = norms_BL[dist_BL == d]
    if at_d.size:
      distances.append(d)
      means.append(float(at_d.mean()))
  return {"distances": distances, "mean_grad_norm": means}
