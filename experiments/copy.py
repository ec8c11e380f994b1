"""Delayed copy (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016): recall 10 symbols after a
blank delay; accuracy against the delay, per architecture (parameter-matched).

The sequence holds the symbols, a delay of blanks, a marker and the answer slots: length =
2 * num_tokens + 1 + delay. The delay goes through the config argument (``:delay=T``) because it
sets the training and evaluation lengths together.

  scripts/sweep.py --config experiments/copy.py --workdir runs/copy --workers 2
  scripts/plot.py --workdir runs/copy            # -> runs/copy/accuracy_vs_delay.png

``accuracy`` is per answer symbol; results.csv also holds ``sequence_accuracy`` (all symbols right).
``:smoke`` shrinks it to seconds.
"""

from __future__ import annotations

from attnlab.sweeps import spec

SIZES = {
    "full": dict(delays=(10, 50, 100, 200), num_tokens=10, seeds=(0, 1, 2), num_steps=5000,
                 batch_size=64, target_params=58_000,
                 models=("rnn", "lstm", "gru", "mingru", "transformer")),
    "smoke": dict(delays=(2, 6), num_tokens=3, seeds=(0,), num_steps=20, batch_size=8,
                  target_params=3_900, models=("lstm", "transformer")),
}


def get_config(arg: str | None = None):
  parsed, size = spec.sized(arg, SIZES, keys=("delay", "model"))
  c = spec.base_config(__file__, model=parsed.get("model", "lstm"), task="delayed_copy",
                       smoke="smoke" in parsed)
  c.model.init = "torch"  # PyTorch's defaults (attnlab/models/initializers.py)
  delay = int(parsed.get("delay", size["delays"][-1]))
  length = 2 * size["num_tokens"] + 1 + delay
  c.task.num_tokens = size["num_tokens"]
  c.train_min_length = c.train_max_length = length
  c.eval_lengths = [length]
  c.model.target_params = size["target_params"]
  spec.set_schedule(c, num_steps=size["num_steps"], batch_size=size["batch_size"],
                    learning_rate=1e-3)
  return c


def get_sweep(arg: str | None = None) -> list[dict]:
  _, size = spec.sized(arg, SIZES, keys=("delay", "model"))
  return spec.grid(arg__model=size["models"], arg__delay=size["delays"], seed=size["seeds"])
