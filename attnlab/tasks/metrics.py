"""Loss and metrics for the three output kinds of ``attnlab.tasks.base``.

``loss_and_metrics(output_kind, outputs, targets, mask) -> (loss, metrics)``:

  per_token   outputs float[B, L, C] logits, targets int[B, L], mask [B, L]
              metrics {"loss", "accuracy", "sequence_accuracy"}
  sequence    outputs float[B, C] logits, targets int[B], mask [B]
              metrics {"loss", "accuracy"}
  regression  outputs float[B] (or [B, 1]) predictions, targets float[B], mask [B]
              metrics {"loss", "mse"}

The loss is the masked mean (cross-entropy or squared error) over positions with mask 1, computed
in float32. ``sequence_accuracy`` is the fraction of examples whose masked positions are all right;
examples with no masked position are left out of it. Every mean divides by max(count, 1), so an
all-zero mask gives 0 rather than NaN.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from attnlab.tasks import base


def _masked_mean(values, mask):
  return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def _cross_entropy(logits, targets):
  """-log softmax(logits)[target], for logits [..., C] and integer targets [...]."""
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  return -jnp.take_along_axis(logp, targets[..., None].astype(jnp.int32), axis=-1)[..., 0]


def _check_shapes(output_kind, outputs, targets, mask):
  want_rank = {base.PER_TOKEN: 3, base.SEQUENCE: 2, base.REGRESSION: 1}[output_kind]
  out_shape = outputs.shape
  if output_kind == base.REGRESSION and outputs.ndim == 2 and outputs.shape[-1] == 1:
    out_shape = outputs.shape[:-1]
  lead = out_shape if output_kind == base.REGRESSION else out_shape[:-1]
  if len(out_shape) != want_rank or tuple(lead) != tuple(targets.shape):
    raise ValueError(f"outputs shape {outputs.shape} does not fit targets shape {targets.shape} "
                     f"for output_kind={output_kind!r} (see attnlab.tasks.metrics docstring)")
  if tuple(mask.shape) != tuple(targets.shape):
    raise ValueError(f"mask shape {mask.shape} must equal targets shape {targets.shape}")


def loss_and_metrics(output_kind: str, outputs: jax.Array, targets: jax.Array,
                     mask: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Masked-mean loss and a dict of scalar metrics; see the module docstring for shapes."""
  if output_kind not in base.OUTPUT_KINDS:
    raise ValueError(f"output_kind={output_kind!r}; allowed: {base.OUTPUT_KINDS}")
  _check_shapes(output_kind, outputs, targets, mask)
  mask = mask.astype(jnp.float32)

  if output_kind == base.REGRESSION:
    preds = outputs.reshape(targets.shape).astype(jnp.float32)
    loss = _masked_mean(jnp.square(preds - targets.astype(jnp.float32)), mask)
    return loss, {"loss": loss, "mse": loss}

  loss = _masked_mean(_cross_entropy(outputs, targets), mask)
  correct = (jnp.argmax(outputs, axis=-1) == targets).astype(jnp.float32)
  accuracy = _masked_mean(correct, mask)
  if output_kind == base.SEQUENCE:
    return loss, {"loss": loss, "accuracy": accuracy}

  # An example is right when no masked position is wrong.
  wrong_B = jnp.sum((1.0 - correct) * mask, axis=-1)
  has_mask_B = (jnp.sum(mask, axis=-1) > 0).astype(jnp.float32)
  seq_correct_B = (wrong_B == 0).astype(jnp.float32)
  sequence_accuracy = _masked_mean(seq_correct_B, has_mask_B)
  return loss, {"loss": loss, "accuracy": accuracy, "sequence_accuracy": sequence_accuracy}
