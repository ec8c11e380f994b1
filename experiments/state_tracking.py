"""State tracking (Merrill, Petty & Sabharwal 2024, "The Illusion of State in State-Space
Models"): the word problem of a group, the running product of a sequence of its elements, with
accuracy against sequence length per group, at 1 and 2 layers.

On the non-solvable groups (S5, A5) the word problem is NC1-complete: a one-layer RNN or LSTM
tracks the product at any length, while a Transformer or a (diagonal, input-dependent) SSM such as
Mamba needs more layers as the length grows. A4 x Z5 (solvable, the order of A5) and Z60
(abelian) are the controls every architecture should handle.

  scripts/sweep.py --config experiments/state_tracking.py:report --workdir runs/state_tracking --workers 2
  scripts/plot.py --workdir runs/state_tracking  # accuracy against length

One cell: ``:report,group=s5,length=32,model=lstm`` (its 1- and 2-layer trials). ``:smoke`` runs in
seconds. Each length is its own training run at that length, evaluated at that length, as in the
paper (its Figure: layers needed against length). The metric is per-position accuracy of the
running product; ``sequence_accuracy`` (every prefix right) is in the same rows. Departures: far
fewer steps and one learning rate; models at equal width, not equal parameters.
"""

from __future__ import annotations

from attnlab.sweeps import spec
from attnlab.tasks import word_problem

SIZES = {
    "full": dict(groups=word_problem.GROUPS, lengths=(4, 8, 16, 32, 64, 128, 256),
                 models=("rnn", "lstm", "decoder", "mamba", "gla", "deltanet", "hawk"),
                 layers=(1, 2, 3, 4), width=128, seeds=(0, 1, 2), num_steps=10_000, batch_size=64),
    # docs/results.md: a non-solvable group and its two controls, a recurrence, attention and an
    # SSM, 1 and 2 layers: 72 runs, about 40 minutes of this 2-core CPU with --workers 2.
    "report": dict(groups=("s5", "a4xz5", "z60"), lengths=(8, 16, 32, 64),
                   models=("lstm", "decoder", "mamba"), layers=(1, 2), width=64, seeds=(0,),
                   num_steps=1500, batch_size=32),
    "smoke": dict(groups=("s5",), lengths=(8,), models=("lstm", "decoder"), layers=(1,),
                  width=16, seeds=(0,), num_steps=10, batch_size=8),
}
_KEYS = ("group", "length", "model")


def get_config(arg: str | None = None):
  parsed, size = spec.sized(arg, SIZES, keys=_KEYS)
  group = parsed.get("group", "s5")
  if group not in word_problem.GROUPS:
    raise ValueError(f"state_tracking: group={group!r}; allowed: {word_problem.GROUPS}")
  c = spec.base_config(__file__, model=parsed.get("model", "lstm"), task="word_problem",
                       smoke="smoke" in parsed)
  c.model.init = "torch"  # PyTorch's defaults (attnlab/models/initializers.py)
  c.task.group = group
  length = int(parsed.get("length", size["lengths"][-1]))
  c.train_min_length = c.train_max_length = length
  c.eval_lengths = [length]
  c.model.d_model = size["width"]
  c.model.num_layers = size["layers"][-1]
  if "num_heads" in c.model:
    c.model.num_heads = 4 if size["width"] >= 32 else 2
  spec.set_schedule(c, num_steps=size["num_steps"], batch_size=size["batch_size"],
                    learning_rate=1e-3)
  return c


def get_sweep(arg: str | None = None) -> list[dict]:
  parsed, size = spec.sized(arg, SIZES, keys=_KEYS)
  groups = [parsed["group"]] if "group" in parsed else size["groups"]
  lengths = [int(parsed["length"])] if "length" in parsed else size["lengths"]
  models = [parsed["model"]] if "model" in parsed else size["models"]
  return spec.grid(arg__group=groups, arg__length=lengths, arg__model=models,
                   model__num_layers=size["layers"], seed=size["seeds"])
