"""Optimizers: a learning-rate schedule, global-norm clipping and a weight-decay mask.

Weight decay applies to matrices only: arrays with ndim >= 2 whose path names no embedding
(token, feature-free position tables). Biases, norm scales and the recurrent/LRU vectors are 1-D
and never decayed; embeddings are excluded because decaying them shrinks rare tokens toward zero.
"""

from __future__ import annotations

from typing import Any

import jax
import optax

OPTIMIZERS = ("adamw", "adam", "sgd")
DECAYS = ("cosine", "linear", "constant")


def validate(opt_cfg: Any) -> None:
  """Raises ValueError naming the bad optimizer field (pure Python, before any compilation)."""
  if opt_cfg.name not in OPTIMIZERS:
    raise ValueError(f"optimizer.name={opt_cfg.name!r}; allowed: {OPTIMIZERS}")
  if opt_cfg.decay not in DECAYS:
    raise ValueError(f"optimizer.decay={opt_cfg.decay!r}; allowed: {DECAYS}")
  for field in ("learning_rate", "weight_decay", "clip_norm", "warmup_steps"):
    if opt_cfg[field] < 0:
      raise ValueError(f"optimizer.{field}={opt_cfg[field]!r}; must be >= 0")
  if opt_cfg.grad_accum_steps < 1:
    raise ValueError(f"optimizer.grad_accum_steps={opt_cfg.grad_accum_steps!r}; must be >= 1")


def make_schedule(opt_cfg: Any, num_steps: int) -> optax.Schedule:
  """Linear warmup from 0 to ``learning_rate``, then cosine/linear decay to 0 or constant."""
  lr, warmup = opt_cfg.learning_rate, int(opt_cfg.warmup_steps)
  decay_steps = max(num_steps - warmup, 1)
  if opt_cfg.decay == "cosine":
    after = optax.cosine_decay_schedule(lr, decay_steps)
  elif opt_cfg.decay == "linear":
    after = optax.linear_schedule(lr, 0.0, decay_steps)
  else:
    after = optax.constant_schedule(lr)
  if warmup == 0:
    return after
  return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), after], [warmup])


def _path_name(path) -> str:
  return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


def decay_mask(params):
  """True for the leaves that get weight decay: ndim >= 2 and no 'embed' in the path."""
  return jax.tree_util.tree_map_with_path(
      lambda path, p: p.ndim >= 2 and "embed" not in _path_name(path).lower(), params)


def make_optimizer(opt_cfg: Any, num_steps: int) -> tuple[optax.GradientTransformation,
                                                          optax.Schedule]:
  """The full transformation (clip -> optimizer with schedule) and the schedule for logging."""
  validate(opt_cfg)
  schedule = make_schedule(opt_cfg, num_steps)
  wd = opt_cfg.weight_decay
  if opt_cfg.name == "adamw":
    opt = optax.adamw(schedule, weight_decay=wd, mask=decay_mask)
  else:
    # adam and sgd: classic coupled L2 (decay added to the gradient before the optimizer).
    base = (optax.adam(schedule) if opt_cfg.name == "adam"
            else optax.sgd(schedule, momentum=opt_cfg.get("momentum", 0.0) or None))
    opt = optax.chain(optax.add_decayed_weights(wd, mask=decay_mask), base) if wd else base
  if opt_cfg.clip_norm > 0:
    opt = optax.chain(optax.clip_by_global_norm(opt_cfg.clip_norm), opt)
  return opt, schedule
