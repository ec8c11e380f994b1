"""A registered backbone wrapped for a task: input embedding -> backbone -> task head.

Token inputs use an ``nn.Embed``, feature inputs (``input_kind == "features"``) a ``Dense``. Per-token
heads read every position; sequence and regression heads read the last position, or with
``lengths_B`` each sequence's last valid one.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from attnlab.models import initializers, registry
from attnlab.tasks import base


class SequenceModel(nn.Module):
  """Embedding -> backbone -> task head. Outputs float32 logits/predictions."""
  backbone: nn.Module  # (x_BLD, lengths_B, *, deterministic) -> y_BLD
  d_model: int  # embedding size D
  vocab_size: int  # token vocabulary (token inputs)
  input_kind: str  # base.INPUT_KINDS
  output_size: int  # classes C (1 for regression)
  output_kind: str  # base.OUTPUT_KINDS
  dtype: Any = jnp.float32  # compute dtype; parameters stay float32
  init_scheme: str = initializers.DEFAULT  # the embedding's and head's (initializers.SCHEMES)

  @nn.compact
  def __call__(self, inputs, lengths_B=None, *, deterministic=True):
    scheme = self.init_scheme
    if self.input_kind == base.TOKENS:
      x_BLD = nn.Embed(self.vocab_size, self.d_model, dtype=self.dtype,
                       embedding_init=initializers.embedding(scheme), name="embed")(inputs)
    else:
      x_BLD = nn.Dense(self.d_model, dtype=self.dtype, name="input_proj",
                       **initializers.linear(scheme, inputs.shape[-1]))(inputs)
    y_BLD = self.backbone(x_BLD, lengths_B, deterministic=deterministic)
    if self.output_kind != base.PER_TOKEN:
      y_BLD = last_valid(y_BLD, lengths_B)
    out = nn.Dense(self.output_size, dtype=self.dtype, name="head",
                   **initializers.linear(scheme, y_BLD.shape[-1]))(y_BLD).astype(jnp.float32)
    return out[..., 0] if self.output_kind == base.REGRESSION else out


def last_valid(y_BLD, lengths_B):
  """y at each sequence's last valid position (the last position when lengths_B is None)."""
  if lengths_B is None:
    return y_BLD[:, -1]
  index_B = jnp.clip(lengths_B - 1, 0, y_BLD.shape[1] - 1)
  return jnp.take_along_axis(y_BLD, index_B[:, None, None], axis=1)[:, 0]


def build(fields, task: base.Task, dtype=jnp.float32, *, max_length: int = 0,
          capture_attention: bool = False) -> SequenceModel:
  """The full model for ``task`` from a model section (see ``registry``)."""
  model = registry.make_config(fields, dtype=dtype, max_length=max_length,
                               capture_attention=capture_attention)
  return from_model(model, task, dtype)


def from_model(model: registry.Model, task: base.Task, dtype=jnp.float32) -> SequenceModel:
  """The full model for ``task`` around a resolved ``registry.Model`` (built with ``dtype``)."""
  resolved = model.fields()
  return SequenceModel(backbone=model.backbone(), d_model=resolved["d_model"],
                       vocab_size=task.vocab_size, input_kind=task.input_kind,
                       output_size=task.output_size, output_kind=task.output_kind, dtype=dtype,
                       init_scheme=resolved["init"])


def dummy_inputs(task: base.Task, batch_size: int = 1, length: int = 4):
  if task.input_kind == base.TOKENS:
    return jnp.zeros((batch_size, length), jnp.int32)
  return jnp.zeros((batch_size, length, task.input_features), jnp.float32)


def abstract_params(model: SequenceModel, task: base.Task):
  """Parameter shapes without allocating or compiling anything."""
  variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), dummy_inputs(task)))
  return variables["params"]


def param_counts(params) -> dict[str, int]:
  """Total and per top-level module (embed/input_proj, backbone, head) parameter counts."""
  counts = {k: sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(v))
            for k, v in params.items()}
  return {"total": sum(counts.values()), **counts}


def _width_multiple(fields) -> int:
  # Attention needs d_model divisible by the heads, and RoPE an even head size.
  return 2 * fields["num_heads"] if "num_heads" in fields else 1


def size_to_target(fields: dict, task: base.Task, target: int, *, max_length: int = 1,
                   max_width: int = 8192) -> dict:
  """A copy of the model section whose d_model gives the parameter count nearest ``target``
  (within 10%; ValueError otherwise)."""
  step = _width_multiple(fields)

  def count(width):
    model = build({**fields, "d_model": width}, task, max_length=max_length)
    return param_counts(abstract_params(model, task))["total"]

  # In units of `step`; the count grows with the width. Double to bracket, then bisect.
  hi = 1
  while hi * step < max_width and count(hi * step) < target:
    hi *= 2
  lo, hi = max(hi // 2, 1), min(hi, max_width // step)
  while lo < hi:
    mid = (lo + hi) // 2
    if count(mid * step) < target:
      lo = mid + 1
    else:
      hi = mid
  best = min({max(lo - 1, 1), lo}, key=lambda w: abs(count(w * step) - target))
  got = count(best * step)
  if abs(got - target) > 0.1 * target:
    raise ValueError(f"model.target_params={target}: the closest {fields['name']} has {got} "
                     f"parameters (d_model={best * step}); adjust num_layers or target_params")
  return {**fields, "d_model": best * step}
