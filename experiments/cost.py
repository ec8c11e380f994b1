"""Cost: training throughput (tokens/s) and peak memory against sequence length, per architecture.

The article's claim made visible: attention's time and memory grow quadratically with length
(unless a memory-efficient kernel keeps memory linear), the recurrent models' linearly. This sweep
measures rather than trains to convergence: each trial runs a few dozen training steps of a
parameter-matched model at one length through the ordinary training loop. ``tokens_per_s`` is the
median of the loop's logged throughput (the first logged window, which includes compilation, is
left out); ``peak_mb`` is the trial process's peak resident memory (``ru_maxrss``, so it includes the
JAX runtime's fixed few hundred MB). Run it with ``--workers 1`` so trials do not share the CPU.

  scripts/sweep.py --config experiments/cost.py --workdir runs/cost --workers 1
  scripts/plot.py --workdir runs/cost            # -> runs/cost/cost_vs_length.png

The length goes through the config argument (``:length=L``). ``:report`` is the size of
docs/results.md (every registered family); ``:smoke`` shrinks it to seconds.
"""

from __future__ import annotations

from attnlab.sweeps import spec

# The families of issue 29: xLSTM's two cells and the xLSTM[7:1] network, Mamba-2, Gated DeltaNet.
NEW_FAMILIES = ("slstm", "mlstm", "xlstm", "mamba2", "gated_deltanet")
METRIC = "tokens_per_s"  # the table's default metric
SIZES = {
    "full": dict(lengths=(256, 1024, 4096, 16384), num_steps=30, batch_size=8,
                 target_params=100_000,
                 models=("rnn", "lstm", "gru", "mingru", "transformer") + NEW_FAMILIES,
                 # At 4 heads Gated DeltaNet has no width within 10% of 100k (64: 111k).
                 heads={"gated_deltanet": 2}),
    "report": dict(lengths=(256, 1024, 4096), num_steps=30, batch_size=8, target_params=100_000,
                   num_heads=2,
                   models=("rnn", "lstm", "gru", "mingru", "minlstm", "lru", "transformer",
                           "decoder", "swa", "linear_attention", "retnet", "gla", "mamba",
                           "hawk")),
    "smoke": dict(lengths=(16, 32), num_steps=6, batch_size=8, target_params=3_900,
                  models=("lstm", "transformer")),
}


def get_config(arg: str | None = None):
  parsed, size = spec.sized(arg, SIZES, keys=("length", "model"))
  c = spec.base_config(__file__, model=parsed.get("model", "lstm"), task="distant_dependency",
                       smoke="smoke" in parsed)
  c.model.init = "torch"  # PyTorch's defaults (attnlab/models/initializers.py)
  length = int(parsed.get("length", size["lengths"][-1]))
  c.task.distance = 1
  c.train_min_length = c.train_max_length = length
  c.eval_lengths = [length]
  c.model.target_params = size["target_params"]
  if "num_heads" in c.model and "num_heads" in size:
    # Widths in steps of 2 * num_heads: at 4 heads GLA and RetNet have no width within 10% of
    # the target (56 -> 88k parameters, 64 -> 110k).
    c.model.num_heads = size["num_heads"]
  if c.model.name in size.get("heads", {}):
    c.model.num_heads = size["heads"][c.model.name]
  spec.set_schedule(c, num_steps=size["num_steps"], batch_size=size["batch_size"], evals=1)
  c.log_every = max(1, c.num_steps // 6)
  c.eval_batches = 1
  return c


def get_sweep(arg: str | None = None) -> list[dict]:
  _, size = spec.sized(arg, SIZES, keys=("length", "model"))
  return spec.grid(arg__model=size["models"], arg__length=size["lengths"], seed=[0])
