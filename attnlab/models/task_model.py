"""A registered backbone wrapped for a task: input embedding -> backbone -> task head.

Token inputs use an ``nn.Embed``, feature inputs (``input_kind == "features"``) a ``Dense``. Per-token
heads read every position; sequence and regression heads read the last position, or with
``lengths_B`` each sequence's last valid one.
"""

from __future__ import annotations

import math
from typing import Any, Callable

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
  embed_std: float = 0.0  # > 0: the token embedding N(0, embed_std^2), not the scheme's

  @nn.compact
  def __call__(self, inputs, lengths_B=None, *, deterministic=True):
    scheme = self.init_scheme
    if self.input_kind == base.TOKENS:
      x_BLD = nn.Embed(self.vocab_size, self.d_model, dtype=self.dtype,
                       embedding_init=initializers.embedding(scheme, self.embed_std),
                       name="embed")(inputs)
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
  return from_model(model, task, dtype, embed_std=float(fields.get("embed_std", 0.0)))


def from_model(model: registry.Model, task: base.Task, dtype=jnp.float32, *,
               embed_std: float = 0.0) -> SequenceModel:
  """The full model for ``task`` around a resolved ``registry.Model`` (built with ``dtype``);
  ``embed_std``: the model section's (registry.COMMON)."""
  resolved = model.fields()
  return SequenceModel(backbone=model.backbone(), d_model=resolved["d_model"],
                       vocab_size=task.vocab_size, input_kind=task.input_kind,
                       output_size=task.output_size, output_kind=task.output_kind, dtype=dtype,
                       init_scheme=resolved["init"], embed_std=embed_std)


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


def size_to_target(model: registry.Model, task: base.Task, target: int, *,
                   max_width: int = 8192) -> registry.Model:
  """``model`` at the width whose parameter count is nearest ``target`` (within 10%; ValueError
  otherwise). Each width tried is ``model.with_width``, counted from shapes alone (nothing is
  compiled or allocated)."""
  step = _width_multiple(model.fields())
  top = max(max_width // step, 1)
  known: dict[int, int] = {}

  def count(units):  # the whole model's count at width units * step
    if units not in known:
      model_at = from_model(model.with_width(units * step), task)
      known[units] = param_counts(abstract_params(model_at, task))["total"]
    return known[units]

  lo = first_reaching(count, target, top)
  best = min({max(lo - 1, 1), lo}, key=lambda u: abs(count(u) - target))
  got = count(best)
  if abs(got - target) > 0.1 * target:
    raise ValueError(f"model.target_params={target}: the closest {model.name} has {got} "
                     f"parameters (d_model={best * step}); adjust num_layers or target_params")
  return model.with_width(best * step)


def first_reaching(count: Callable[[int], int], target: int, top: int) -> int:
  """The smallest ``u`` in ``[1, top]`` with ``count(u) >= target`` (``top`` if none), for a
  ``count`` that grows with ``u``.

  Parameter counts grow close to quadratically with the width: the quadratic through ``u`` = 1, 2
  and 3 guesses the answer, a gallop from the guess brackets it exactly, and a bisection finds it
  (about six counts where doubling from 1 took a dozen; the same answer either way)."""
  guess = min(max(_quadratic_root(count(1), count(2), count(3), target), 1), top)
  lo, hi, gap = guess, guess, 1  # invariant after each gallop: the answer is in [lo, hi]
  while hi < top and count(hi) < target:
    lo, hi, gap = hi + 1, min(hi + gap, top), 2 * gap
  while lo > 1 and count(lo - 1) >= target:
    hi, lo, gap = lo - 1, max(lo - gap, 1), 2 * gap
  while lo < hi:
    mid = (lo + hi) // 2
    if count(mid) < target:
      lo = mid + 1
    else:
      hi = mid
  return lo


def _quadratic_root(c1: int, c2: int, c3: int, target: int) -> int:
  """The smallest integer u >= 1 where the quadratic through (1, c1), (2, c2), (3, c3) reaches
  ``target`` (a guess: the caller checks it)."""
  a = (c3 - 2 * c2 + c1) / 2
  b = c2 - c1 - 3 * a
  c = c1 - a - b
  if a <= 0:
    return math.ceil((target - c) / b) if b > 0 else 1
  return math.ceil((-b + math.sqrt(max(b * b - 4 * a * (c - target), 0.0))) / (2 * a))
