"""The registered ``swa`` model: its config section, and a short run through the training loop."""

from __future__ import annotations

import pytest

from attnlab.models import registry
from attnlab.models.transformer.config import SlidingWindowConfig
from tests.train import helpers


def test_section_shows_the_window_and_the_config_checks_it():
  section = registry.section("swa")
  assert section["window"] == SlidingWindowConfig().window == 64
  assert registry.section("decoder")["window"] == 0  # full attention
  assert registry.make_config({**section, "window": 5}).window == 5
  with pytest.raises(ValueError, match=r"model.window=-1; must be >= 0"):
    registry.make_config({**section, "window": -1})


def test_learns_copy_within_its_window(tmp_path):
  """Copy of length 17 recalls each symbol 9 positions back: inside a window of 12, which is
  shorter than the sequence (with window 4 the same run stays at chance, 1/8)."""
  final = helpers.train_on_one_device(
      "swa", "copy", str(tmp_path), **{
          "model.window": 12, "model.d_model": 32, "model.d_ff": 64, "train_min_length": 17,
          "train_max_length": 17, "eval_lengths": [17], "num_steps": 100, "batch_size": 32,
          "eval_every": 100, "checkpoint_every": 100, "log_every": 100, "eval_batches": 2,
          "optimizer.warmup_steps": 10})
  assert final["lengths"]["17"]["accuracy"] > 0.35  # chance: 1/8
