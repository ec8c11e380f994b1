"""``check_config``: a workdir's ``config.json`` is written once and every resume must match it
(re-exported by ``attnlab.train.checkpoint``, the workdir contract)."""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Mapping

import jax

from attnlab.models import initializers
from attnlab.train import convergence

log = logging.getLogger(__name__)

# Fields that only change bookkeeping, never the trained parameters or the evaluations: a resumed
# run may change them freely. Everything else (num_steps included: it sets the learning-rate
# schedule's horizon) must match unless allow_mismatch is asked. converge_epsilon only changes the
# summary's "converged"; eval_every is neutral only without early stopping (patience 0): with it,
# the evaluations decide the step a run stops at.
RESULT_NEUTRAL = ("log_every", "eval_every", "checkpoint_every", "keep_checkpoints",
                  "converge_epsilon")
_MISSING = "<missing>"
# Fields added after runs were saved without them, with the value those runs used: an old
# config.json reads as the run it describes (those runs never stopped early).
LEGACY_MODEL_FIELDS = {"init": initializers.LEGACY, "embed_std": 0.0}
LEGACY_FIELDS = {"val_seed": convergence.VAL_SEED, "solve_accuracy": convergence.SOLVE_ACCURACY,
                 "solve_mse": convergence.SOLVE_MSE, "patience": 0,
                 "converge_epsilon": convergence.CONVERGE_EPSILON}


def with_legacy_fields(tree: Mapping[str, Any]) -> dict:
  """A saved config (plain data) with the fields it predates filled in as that run used them."""
  tree = {**LEGACY_FIELDS, **tree}
  if isinstance(tree.get("model"), Mapping):
    tree["model"] = {**LEGACY_MODEL_FIELDS, **tree["model"]}
  return tree


def _flat_config(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
  flat = {}
  for k, v in tree.items():
    if isinstance(v, Mapping) and v:
      flat.update(_flat_config(v, f"{prefix}{k}."))
    else:
      flat[f"{prefix}{k}"] = v
  return flat


def config_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
  """{dotted field: (old, new)} for every field that differs ("<missing>" if absent)."""
  a, b = _flat_config(old), _flat_config(new)
  return {k: (a.get(k, _MISSING), b.get(k, _MISSING))
          for k in sorted(set(a) | set(b)) if a.get(k, _MISSING) != b.get(k, _MISSING)}


def _write_json_atomic(path: str, data: Any) -> None:
  tmp = f"{path}.tmp{os.getpid()}"
  with open(tmp, "w") as f:
    json.dump(data, f, indent=2, sort_keys=True)
  os.replace(tmp, path)


def move_aside(src: str, dst: str) -> str:
  """Renames ``src`` to ``dst``, or to ``dst.1``, ``dst.2``... if taken; returns the new name."""
  n = 0
  while os.path.exists(dst + (f".{n}" if n else "")):
    n += 1
  dst += f".{n}" if n else ""
  os.rename(src, dst)
  return dst


def check_config(workdir: str, config_dict: Any, *, overwrite: bool = False,
                 allow_mismatch: bool = False) -> dict[str, tuple[Any, Any]]:
  """Writes ``workdir/config.json`` or checks that the run there used the same config (call it
  before anything else writes there); returns the accepted differences. A different config raises,
  unless ``overwrite`` (the old workdir is moved aside) or ``allow_mismatch`` (the old config.json
  is kept as ``config.old-<time>.json``); RESULT_NEUTRAL fields may differ."""
  if hasattr(config_dict, "to_dict"):  # a ConfigDict
    config_dict = config_dict.to_dict()
  new = json.loads(json.dumps(config_dict, sort_keys=True, default=str))  # as config.json holds it
  path = os.path.join(workdir, "config.json")
  primary = jax.process_index() == 0
  if overwrite and os.path.exists(workdir) and os.listdir(workdir) and primary:
    moved = move_aside(workdir, f"{workdir.rstrip('/')}.old-{time.strftime('%Y%m%d-%H%M%S')}")
    log.warning("overwrite: moved the previous run in %s to %s", workdir, moved)
  if primary:
    os.makedirs(workdir, exist_ok=True)
  if not os.path.exists(path):
    if primary:
      _write_json_atomic(path, new)
    return {}
  with open(path) as f:
    old = json.load(f)
  diff = config_diff(with_legacy_fields(old), with_legacy_fields(new))
  neutral = [k for k in RESULT_NEUTRAL if k != "eval_every" or not new.get("patience", 0)]
  blocking = {k: v for k, v in diff.items() if k not in neutral}
  lines = "\n".join(f"  {k}: {o!r} -> {n!r}" for k, (o, n) in diff.items())
  if blocking and not allow_mismatch:
    raise ValueError(
        f"workdir {workdir} holds a run with a different config ({path}); differing fields "
        f"(old -> new):\n{lines}\nUse a new workdir, or ask to overwrite (the old run is moved "
        f"aside) or to allow the mismatch (continue anyway).")
  if diff and primary:
    if blocking:
      kept = os.path.join(workdir, f"config.old-{time.strftime('%Y%m%d-%H%M%S')}.json")
      os.replace(path, kept)
      log.warning("Continuing %s with a different config (previous one kept in %s):\n%s",
                      workdir, kept, lines)
    else:
      log.info("Config of %s changed in result-neutral fields only:\n%s", workdir, lines)
    _write_json_atomic(path, new)
  return diff
