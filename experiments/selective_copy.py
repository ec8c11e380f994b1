"""Selective copy (Gu & Dao 2023, Mamba): copy the data tokens scattered among noise, in order;
accuracy against sequence length, per architecture (parameter-matched). Time-invariant recurrences
(the LRU) struggle here; input-dependent gating (minGRU, LSTM, GRU) and attention do not.

  scripts/sweep.py --config experiments/selective_copy.py --workdir runs/selective_copy --workers 2
  scripts/plot.py --workdir runs/selective_copy  # -> runs/selective_copy/accuracy_vs_length.png

The length goes through the config argument (``:length=L``). ``:smoke`` shrinks it to seconds.
"""

from __future__ import annotations

from attnlab.sweeps import spec

SIZES = {
    "full": dict(lengths=(64, 128, 256, 512), num_tokens=16, seeds=(0, 1, 2), num_steps=5000,
                 batch_size=64, target_params=100_000,
                 models=("lstm", "gru", "mingru", "lru", "transformer")),
    "smoke": dict(lengths=(12, 16), num_tokens=3, seeds=(0,), num_steps=20, batch_size=8,
                  target_params=4_100, models=("lstm", "transformer")),
}


def get_config(arg: str | None = None):
  parsed, size = spec.sized(arg, SIZES, keys=("length", "model"))
  c = spec.base_config(__file__, model=parsed.get("model", "lstm"), task="selective_copy",
                       smoke="smoke" in parsed)
  c.model.init = "torch"  # PyTorch's defaults (attnlab/models/initializers.py)
  length = int(parsed.get("length", size["lengths"][-1]))
  c.task.num_tokens = size["num_tokens"]
  c.train_min_length = c.train_max_length = length
  c.eval_lengths = [length]
  c.model.target_params = size["target_params"]
  spec.set_schedule(c, num_steps=size["num_steps"], batch_size=size["batch_size"],
                    learning_rate=1e-3)
  return c


def get_sweep(arg: str | None = None) -> list[dict]:
  _, size = spec.sized(arg, SIZES, keys=("length", "model"))
  return spec.grid(arg__model=size["models"], arg__length=size["lengths"], seed=size["seeds"])
