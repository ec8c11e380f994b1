"""The adding problem (Hochreiter & Schmidhuber 1997): MSE against sequence length, per architecture.

Two marked values, one in each half of the sequence, must be summed; the answer is read at the last
position. Predicting the mean gives MSE ~0.167 (the baseline a model must beat). Models are
parameter-matched; the length goes through the config argument (``:length=L``) because it sets the
training length and the evaluation lengths together.

  scripts/sweep.py --config experiments/adding.py --workdir runs/adding --workers 2
  scripts/plot.py --workdir runs/adding --metric mse   # -> runs/adding/mse_vs_length.png

One run: ``scripts/train.py --config experiments/adding.py:length=200,model=gru --workdir runs/one``.
``:report`` is the size of docs/results.md; ``:smoke`` shrinks it to seconds.
"""

from __future__ import annotations

from attnlab.sweeps import spec

SIZES = {
    "full": dict(lengths=(50, 100, 200, 400), seeds=(0, 1, 2), num_steps=5000, batch_size=64,
                 target_params=58_000, models=("rnn", "lstm", "gru", "mingru", "transformer")),
    "report": dict(lengths=(100, 200, 400), seeds=(0, 1), num_steps=1000, batch_size=32,
                   target_params=20_000, models=("rnn", "lstm", "gru", "mingru"),
                   forget_biases=(1.0,)),
    "smoke": dict(lengths=(8, 16), seeds=(0,), num_steps=20, batch_size=8, target_params=3_400,
                  models=("lstm", "transformer")),
}


def get_config(arg: str | None = None):
  parsed, size = spec.sized(arg, SIZES, keys=("length", "model"))
  c = spec.base_config(__file__, model=parsed.get("model", "lstm"), task="adding",
                       smoke="smoke" in parsed)
  c.model.init = "torch"  # PyTorch's defaults (attnlab/models/initializers.py)
  length = int(parsed.get("length", size["lengths"][-1]))
  c.train_min_length = c.train_max_length = length
  c.eval_lengths = [length]
  c.model.target_params = size["target_params"]
  spec.set_schedule(c, num_steps=size["num_steps"], batch_size=size["batch_size"],
                    learning_rate=1e-3)
  c.best_metric = "mse"
  return c


def get_sweep(arg: str | None = None) -> list[dict]:
  _, size = spec.sized(arg, SIZES, keys=("length", "model"))
  return spec.grid_with_variants(size, arg__model=size["models"], arg__length=size["lengths"],
                                 seed=size["seeds"])
