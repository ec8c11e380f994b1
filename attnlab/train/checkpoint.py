"""Checkpoints: orbax CheckpointManager with checksums, damaged-step fallback (and check_config).

``directory`` holds one folder per step: ``state`` (the train state), ``meta`` (JSON: step, metrics
and the caller's ``extra``), ``metrics`` (orbax's copy, to rank the best step) and the checksum
sidecar (``checksums.py``). Arrays are stored without zstd by default: float32 parameters barely
compress, and compression slows saving and restoring several times.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import os
import shutil
import time
from typing import Any, Mapping

import jax
import numpy as np
import orbax.checkpoint as ocp

from attnlab.train.checksums import SIDECAR, verify_step_dir, write_sidecar
# check_config is part of this module's API (the workdir contract); it lives in its own file.
from attnlab.train.workdir_config import check_config, move_aside  # noqa: F401

log = logging.getLogger(__name__)

TMP_SUFFIX = ".orbax-checkpoint-tmp"
_BEST_MODES = ("max", "min")


def _scalar_metrics(metrics: Mapping[str, Any] | None, prefix: str = "") -> dict[str, float]:
  """{"a": {"b": 1}} -> {"a/b": 1.0}, finite scalars only (NaN never competes for best)."""
  out = {}
  for k, v in (metrics or {}).items():
    if isinstance(v, Mapping):
      out.update(_scalar_metrics(v, f"{prefix}{k}/"))
      continue
    try:
      f = float(v)
    except (TypeError, ValueError):
      continue
    if math.isfinite(f):
      out[f"{prefix}{k}"] = f
  return out


def _abstract_leaf(x: Any) -> Any:
  """Shape, dtype and sharding to restore into (the first device if x has no sharding)."""
  x = ocp.utils.to_shape_dtype_struct(x)  # a Python scalar has no shape: restored as such
  if hasattr(x, "shape") and getattr(x, "sharding", None) is None:
    x = jax.ShapeDtypeStruct(x.shape, x.dtype,
                             sharding=jax.sharding.SingleDeviceSharding(jax.devices()[0]))
  return x


class Checkpointer:
  """Saves and restores a train-state pytree under ``directory``: the last ``keep`` steps, and the
  best by ``best_metric`` (a key of ``save``'s metrics, nested ones as "a/b") and ``best_mode``."""

  def __init__(self, directory: str, *, keep: int = 3, best_metric: str | None = None,
               best_mode: str = "max", async_save: bool = True, verify: bool = True,
               compress: bool = False):
    if not isinstance(keep, int) or keep < 1:
      raise ValueError(f"keep={keep!r} must be an integer >= 1")
    if best_mode not in _BEST_MODES:
      raise ValueError(f"best_mode={best_mode!r}; allowed: {_BEST_MODES}")
    self.directory = os.path.abspath(os.fspath(directory))
    self.damaged_directory = self.directory.rstrip("/") + "_damaged"
    self.best_metric = best_metric.replace(".", "/") if best_metric else None
    self._async = async_save
    # Multi-host: each host writes its own files, so no single host can checksum the step.
    self._checksums = verify and jax.process_count() == 1
    self._primary = jax.process_index() == 0
    os.makedirs(self.directory, exist_ok=True)
    # A killed writer's half-written saves (never committed) go at the first save, when none of
    # ours is in flight: a reader of a live run (evaluation) never saves, so never removes its save.
    self._interrupted = sorted(os.path.join(self.directory, name)
                               for name in os.listdir(self.directory) if TMP_SUFFIX in name)
    for path in self._interrupted:
      log.warning("Checkpoint %s is a half-written save (interrupted before commit); ignoring it "
                  "(removed at this Checkpointer's first save).", path)

    policies = [ocp.checkpoint_managers.LatestN(n=keep)]
    best_fn = None
    if self.best_metric:
      # Steps saved without the metric rank worst (orbax warns on every save given no metrics).
      metric, worst = self.best_metric, -math.inf if best_mode == "max" else math.inf
      best_fn = lambda m: m.get(metric, worst)  # noqa: E731
      policies.append(ocp.checkpoint_managers.BestN(
          get_metric_fn=best_fn, reverse=best_mode == "min", n=1,
          keep_checkpoints_without_metrics=False))
    options = ocp.CheckpointManagerOptions(
        preservation_policy=ocp.checkpoint_managers.AnyPreservationPolicy(policies),
        best_fn=best_fn, best_mode=best_mode, enable_async_checkpointing=True,
        async_options=ocp.AsyncOptions(post_finalization_callback=self._write_sidecar),
        cleanup_tmp_directories=False)
    self._manager = ocp.CheckpointManager(
        self.directory, options=options,
        item_handlers={"state": ocp.PyTreeCheckpointHandler(use_compression=compress),
                       "meta": ocp.JsonCheckpointHandler()})

  # -- saving ------------------------------------------------------------------------------------

  def _write_sidecar(self) -> None:
    """orbax callback: runs in its save thread after the step is written, before the rename. The
    one tmp folder then is that step's: orbax starts a save only once the previous one is done."""
    if not self._checksums or not self._primary:
      return
    for name in os.listdir(self.directory):
      if name.endswith(TMP_SUFFIX):
        try:
          write_sidecar(os.path.join(self.directory, name), int(name[:-len(TMP_SUFFIX)]))
        except Exception as e:  # pylint: disable=broad-except
          # Never fail the save over its checksums: the step stays, unverified.
          log.error("Could not write checksums for checkpoint %s: %s", name, e)

  def save(self, step: int, state: Any, metrics: Mapping[str, Any] | None = None,
           force: bool = False, extra: Mapping[str, Any] | None = None) -> bool:
    """Starts saving ``state`` as ``step`` with ``extra`` (plain JSON) in its metadata; ``wait()``
    blocks until it is committed. False (nothing saved) if the step exists or orbax declines."""
    step = int(step)
    for path in self._interrupted if self._primary else []:  # other hosts: the primary removes
      log.warning("Removing half-written checkpoint %s (never committed).", path)
      shutil.rmtree(path, ignore_errors=True)
    self._interrupted = []
    if step in self._manager.all_steps():
      log.info("Checkpoint step %d already exists; not saving it again.", step)
      return False
    flat = _scalar_metrics(metrics)
    meta = {"step": step, "metrics": flat, "time": time.time()}
    if extra:
      meta["extra"] = dict(extra)
    args = ocp.args.Composite(state=ocp.args.PyTreeSave(state), meta=ocp.args.JsonSave(meta))
    saved = self._manager.save(step, args=args, metrics=flat if self.best_metric else None,
                               force=force)
    if saved and not self._async:
      self.wait()
    return bool(saved)

  def wait(self) -> None:
    """Blocks until every started save is committed."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()

  def __enter__(self) -> Checkpointer:
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  # -- restoring ---------------------------------------------------------------------------------

  def steps(self) -> list[int]:
    """Committed steps, ascending (damaged ones included until a restore finds them)."""
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    return max(self.steps(), default=None)

  def best_step(self) -> int | None:
    """The step with the best ``best_metric`` (None if no saved step carries it)."""
    if not self.best_metric:
      return None
    self.wait()  # the metrics of an in-flight step are only readable once it is committed
    best = self._manager.best_step()
    if best is None or self.best_metric not in (self._manager.metadata(best).metrics or {}):
      return None
    return best

  def metadata(self, step: int) -> dict:
    """The JSON saved beside ``step``: {"step", "metrics", "time"[, "extra"]}."""
    restored = self._manager.restore(
        step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
    return dict(restored["meta"])

  def _restore_step(self, step: int, abstract_state: Any) -> Any:
    """Verifies the checksums while orbax reads (both from the page cache), then returns."""
    if abstract_state is None:  # the saved tree as it is, as numpy arrays
      saved = self._manager.item_metadata(step)["state"].tree
      state_args = ocp.args.PyTreeRestore(restore_args=jax.tree_util.tree_map(
          lambda _: ocp.RestoreArgs(restore_type=np.ndarray), saved))
    else:
      abstract = jax.tree_util.tree_map(_abstract_leaf, abstract_state)
      state_args = ocp.args.PyTreeRestore(
          abstract, restore_args=ocp.checkpoint_utils.construct_restore_args(abstract))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
      check = (pool.submit(verify_step_dir, os.path.join(self.directory, str(step)))
               if self._checksums else None)
      try:
        restored = self._manager.restore(
            step, args=ocp.args.Composite(state=state_args, meta=ocp.args.JsonRestore()))
      except Exception:
        if check is not None:
          check.result()  # the checksum's cause names the file: raise it first
        raise
      if check is not None and not check.result():
        log.warning("Checkpoint step %d has no %s; restored it unverified.", step, SIDECAR)
    if int(restored["meta"]["step"]) != step:
      raise ValueError(f"meta names step {restored['meta']['step']}, folder is step {step}")
    return restored["state"]

  def restore(self, step: int | str, abstract_state: Any) -> Any:
    """Restores ``step`` (an int, "best" or "latest": as ``restore_latest``); ValueError if absent
    or damaged. ``abstract_state`` (arrays or ShapeDtypeStructs) gives the shapes, dtypes and
    shardings; None restores the saved tree as numpy arrays (to inspect it without the model)."""
    if step == "latest":
      found = self.restore_latest(abstract_state)
      if found is None:
        raise ValueError(f"no checkpoint in {self.directory}")
      return found[0]
    if step == "best":
      if not self.best_metric:
        raise ValueError("restore('best') needs a Checkpointer with best_metric set")
      step = self.best_step()
      if step is None:
        raise ValueError(f"no checkpoint in {self.directory} has metric {self.best_metric!r}")
    if not isinstance(step, int) or step not in self.steps():
      raise ValueError(f"step={step!r} not found; allowed: 'best', 'latest' or one of "
                       f"{self.steps()}")
    try:
      return self._restore_step(step, abstract_state)
    except Exception as e:  # orbax/tensorstore raise ValueError, OSError, json errors...
      raise ValueError(f"checkpoint step {step} in {self.directory} is damaged: "
                       f"{type(e).__name__}: {e}") from e

  def restore_latest(self, abstract_state: Any) -> tuple[Any, int] | None:
    """(state, step) of the latest step that verifies and restores (None if there is none); a
    damaged step is logged with its cause, moved to ``<directory>_damaged/`` and skipped."""
    self.wait()
    for step in reversed(self.steps()):
      try:
        return self._restore_step(step, abstract_state), step
      except Exception as e:  # pylint: disable=broad-except
        cause = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        log.warning("Checkpoint step %d is damaged (%s); moved it to %s and falling back to the "
                    "previous step.", step, cause, self._quarantine(step))
    return None

  def _quarantine(self, step: int) -> str:
    """Moves a damaged step aside (never deleted), so a resumed run can save that step again."""
    src = os.path.join(self.directory, str(step))
    dst = os.path.join(self.damaged_directory, f"{step}-{time.strftime('%Y%m%d-%H%M%S')}")
    if self._primary:
      os.makedirs(self.damaged_directory, exist_ok=True)
      try:
        dst = move_aside(src, dst)
      except OSError as e:  # e.g. removed meanwhile by the retention of a live run
        dst = f"(not moved: {e})"
    self._manager.reload()
    return dst
