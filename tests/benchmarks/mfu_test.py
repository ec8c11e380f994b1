"""bench.py mfu: the peak table, and PaLM's model FLOPs against XLA's own count of the step."""

from __future__ import annotations

import argparse

import pytest

from benchmarks import mfu


@pytest.mark.parametrize("kind, peak", [
    ("NVIDIA H100 80GB HBM3", 989.4), ("NVIDIA H100 PCIe", 756.5), ("NVIDIA H100 NVL", 835.5),
    ("NVIDIA H200", 989.4), ("NVIDIA H200 NVL", 835.5), ("NVIDIA A100-SXM4-80GB", None),
    ("cpu", None)])
def test_peak_by_device_kind(kind, peak):
  assert mfu.peak_tflops(kind) == peak


def test_model_flops_match_xla_count_of_the_train_step():
  # With naive attention every logit is computed (as PaLM's count assumes) and the step's
  # non-matrix work (norms, softmax, AdamW) is a few percent at this width.
  opts = argparse.Namespace(model="decoder", d_model=64, num_layers=2, num_heads=4, length=64,
                            batch=4, dtype="float32", attention_impl="naive")
  fn, state, batch, setup = mfu.train_step_fn(mfu.make_config(opts))
  import jax
  cost = fn.lower(state, batch, jax.random.PRNGKey(0)).compile().cost_analysis()
  xla_flops = (cost[0] if isinstance(cost, (list, tuple)) else cost)["flops"]
  counts = setup.param_counts
  palm = mfu.model_flops_per_token(counts["total"] - counts["embed"], 2, 64, 64) * 4 * 64
  assert 1.0 <= xla_flops / palm < 1.1, (xla_flops, palm)
