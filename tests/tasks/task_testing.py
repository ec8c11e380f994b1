"""Shared helpers for the task tests: sample un-jitted at tiny sizes and return numpy arrays."""

from __future__ import annotations

import jax
import numpy as np

from attnlab.tasks import common


def sample_np(task, seed: int, batch_size: int, length: int) -> dict[str, np.ndarray]:
  batch = task.sample(jax.random.key(seed), batch_size, length)
  return {k: np.asarray(v) for k, v in batch.items()}


def is_distractor(token: int) -> bool:
  return common.FIRST_DISTRACTOR <= token < common.FIRST_DISTRACTOR + common.NUM_DISTRACTORS
