"""The registered ``swa`` model: its config section, decoding with a state that stops growing at
the window, and a short run through the training loop."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models import registry
from attnlab.models.transformer import blocks
from attnlab.models.transformer.config import SlidingWindowConfig
from tests.train import helpers

# These programs are tiny: compile time dominates, so skip the slow LLVM optimisation passes.
jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


def test_section_shows_the_window_and_the_config_checks_it():
  section = registry.section("swa")
  assert section["window"] == SlidingWindowConfig().window == 64
  assert registry.section("decoder")["window"] == 0  # full attention
  assert registry.make_config({**section, "window": 5}).config.window == 5
  with pytest.raises(ValueError, match=r"model.window=-1; must be >= 0"):
    registry.make_config({**section, "window": -1})


def test_decoding_state_stops_growing_at_the_window():
  """Window 3: every layer keeps the last 2 keys/values, however long the decoded sequence."""
  section = {**registry.section("swa"), "window": 3, "d_model": 16, "num_heads": 4,
             "num_layers": 2, "d_ff": 32, "max_len": 8}
  dec = blocks.Decoder(registry.make_config(section).config)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 16))
  params = jit(dec.init)(jax.random.PRNGKey(1), x)
  step = jit(dec.apply)
  full, _ = step(params, x, None, None)
  state, outs = None, []
  for a, b in [(0, 4), (4, 5), (5, 8)]:
    y, state = step(params, x[:, a:b], None, state)
    outs.append(y)
    assert state.blocks[1].self_attention.key_BSGK.shape == (2, 2, 4, 4)
  np.testing.assert_allclose(jnp.concatenate(outs, axis=1), full, atol=1e-5)
  assert dec.state_size(16, 8) == dec.state_size(16, 1000) == 2 * 2 * (2 * 16)


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
