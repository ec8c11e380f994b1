"""Mixture-of-experts against a dense feed-forward at equal active parameters.

The article names mixture-of-experts as the next step after attention: more parameters at the same
compute per token. A decoder-only Transformer on multi-query associative recall (MQAR), once with
its dense feed-forward (d_ff) and once with ``model.moe_experts`` experts of the same size routed
top-1 (Switch), so every token runs one feed-forward of d_ff either way: the same active parameters,
E times the feed-forward parameters. The table gives accuracy and training tokens/s.

  scripts/sweep.py --config experiments/moe.py --workdir runs/moe --workers 2
  scripts/plot.py --workdir runs/moe             # -> runs/moe/accuracy_vs_moe_experts.png

Variants: ``:report`` (the size of docs/results.md), ``:smoke`` (seconds; tests).
"""

from __future__ import annotations

from attnlab.sweeps import spec

SIZES = {
    "full": dict(experts=(0, 4, 8, 16), length=128, kv_pairs=16, d_model=64, seeds=(0, 1, 2),
                 num_steps=5000, batch_size=64),
    "report": dict(experts=(0, 4, 8), length=64, kv_pairs=8, d_model=64, seeds=(0, 1),
                   num_steps=2000, batch_size=32),
    "smoke": dict(experts=(0, 2), length=16, kv_pairs=2, d_model=16, seeds=(0,), num_steps=20,
                  batch_size=8),
}


def get_config(arg: str | None = None):
  parsed, size = spec.sized(arg, SIZES)
  c = spec.base_config(__file__, model="decoder", task="mqar", smoke="smoke" in parsed)
  c.model.init = "torch"  # PyTorch's defaults (attnlab/models/initializers.py)
  c.task.num_kv_pairs = size["kv_pairs"]
  c.train_min_length = c.train_max_length = size["length"]
  c.eval_lengths = [size["length"]]
  c.model.d_model = size["d_model"]
  c.model.num_layers = 2
  c.model.moe_top_k = 1  # one expert per token: the dense model's active parameters
  c.model.moe_capacity_factor = 1.25
  spec.set_schedule(c, num_steps=size["num_steps"], batch_size=size["batch_size"],
                    learning_rate=1e-3)
  return c


def get_sweep(arg: str | None = None) -> list[dict]:
  _, size = spec.sized(arg, SIZES)
  return spec.grid(model__moe_experts=size["experts"], seed=size["seeds"])
