"""Where metrics go: log lines, metrics.jsonl, eval.jsonl (the validation curve), TensorBoard (tb/)
and a progress bar. Only the lead process writes; the others' writer takes the calls, does nothing.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys

import tqdm

log = logging.getLogger(__name__)


def _import_tensorboardx():
  """tensorboardX, without the PyTorch import it makes when torch is installed (only to accept
  torch tensors, which attnlab never passes): seconds of every run's start-up otherwise."""
  if "torch" in sys.modules:
    import tensorboardX
    return tensorboardX
  sys.modules["torch"] = None  # makes "import torch" raise ImportError, which tensorboardX allows
  try:
    import tensorboardX
  finally:
    del sys.modules["torch"]
  return tensorboardX


tensorboardX = _import_tensorboardx()


def _step_of(line: str) -> float:
  try:
    return int(json.loads(line)["step"])
  except (ValueError, KeyError, TypeError):  # a kill mid-write can leave a partial last line
    return math.inf  # after every step: dropped


def _open_resumed(path: str, step: int):
  """``path`` opened to append, minus the records after ``step``: a resumed run redoes those."""
  if os.path.exists(path):
    with open(path) as f:
      lines = f.readlines()
    keep = [line for line in lines if _step_of(line) <= step]
    if len(keep) != len(lines):
      tmp = path + ".tmp"
      with open(tmp, "w") as f:
        f.writelines(keep)
      os.replace(tmp, path)  # atomic: a kill here leaves the old or the new file, never half of one
  return open(path, "a")


def fmt(scalars: dict) -> str:
  return ", ".join(f"{k}={v:.4g}" for k, v in sorted(scalars.items()))


class MetricWriter:
  """Appends train and eval records of one workdir; a progress bar only on a terminal."""

  def __init__(self, workdir: str, *, enabled: bool, total_steps: int, initial_step: int):
    self.enabled = enabled
    if not enabled:
      return
    os.makedirs(workdir, exist_ok=True)
    self._metrics = _open_resumed(os.path.join(workdir, "metrics.jsonl"), initial_step)
    self._eval = _open_resumed(os.path.join(workdir, "eval.jsonl"), initial_step)
    self._tb = tensorboardX.SummaryWriter(os.path.join(workdir, "tb"))
    self._bar = (tqdm.tqdm(total=total_steps, initial=initial_step, dynamic_ncols=True)
                 if sys.stderr.isatty() else None)

  def train(self, step: int, scalars: dict) -> None:
    if not self.enabled:
      return
    log.info("step %d: %s", step, fmt(scalars))
    self._metrics.write(json.dumps({"step": step, **scalars}) + "\n")
    self._metrics.flush()
    for k, v in scalars.items():
      self._tb.add_scalar(f"train/{k}", v, step)
    if self._bar is not None:
      self._bar.set_postfix(loss=f"{scalars.get('loss', float('nan')):.4g}", refresh=False)

  def eval(self, record: dict) -> None:
    """``record = {"step": S[, "split": "val"], "lengths": {"64": {metric: value}}}``."""
    if not self.enabled:
      return
    step, split = record["step"], record.get("split", "eval")
    for length, scalars in record["lengths"].items():
      log.info("%s step %d length %s: %s", split, step, length, fmt(scalars))
      for k, v in scalars.items():
        self._tb.add_scalar(f"{split}/{k}/L{length}", v, step)
    self._eval.write(json.dumps(record) + "\n")
    self._eval.flush()

  def advance(self) -> None:
    if self.enabled and self._bar is not None:
      self._bar.update()

  def close(self) -> None:
    if not self.enabled:
      return
    if self._bar is not None:
      self._bar.close()
    self._metrics.close()
    self._eval.close()
    self._tb.close()
