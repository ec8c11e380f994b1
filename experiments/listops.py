"""ListOps from the Long Range Arena (Tay et al. 2021): the value (0-9) of a nested MIN / MAX /
MED / SUM_MOD prefix expression, read at its last token; accuracy per architecture.

LRA's published accuracies at lengths 500-2000 (its leaderboard): Transformer 36.37, linear
Transformer 16.13, S4 59.6 (chance 10%).

  scripts/sweep.py --config experiments/listops.py:report --workdir runs/listops --workers 2

``:report`` trains at lengths up to 512 (expressions of 128-512 tokens at L = 512), which attention
can afford on this CPU; ``full`` is LRA's range: L = 2000 with expressions of 500-2000 tokens
(``task.min_fraction = 0.25``), LRA's tree knobs (depth 10, up to 10 arguments) throughout. One
cell: ``:report,model=lstm``. ``:smoke`` runs in seconds. Departures from LRA: expressions are
drawn afresh every step (LRA: 96,000 fixed training examples; ``--config.train_examples=96000``
gives that), right-aligned and read at the last token by causal models (LRA pads on the right
and pools an encoder's outputs; the encoder Transformer is in ``full``), the closing brackets are
kept (LRA's tokenizer drops them, as we read it), and AdamW at 1e-3 for every model.
"""

from __future__ import annotations

from attnlab.sweeps import spec

SIZES = {
    "full": dict(lengths=(2000,), models=("transformer", "decoder", "linear_attention", "lstm",
                                          "mamba", "gla", "hawk", "deltanet"),
                 width=128, layers=4, seeds=(0, 1, 2), num_steps=5000, batch_size=32,
                 test_batches=64),
    # docs/results.md: attention, linear attention, an LSTM and an SSM at L = 256 and 512: 8 runs,
    # about an hour of this 2-core CPU with --workers 2.
    "report": dict(lengths=(256, 512), models=("decoder", "linear_attention", "lstm", "mamba"),
                   width=64, layers=2, seeds=(0,), num_steps=2000, batch_size=32,
                   test_batches=16),
    "smoke": dict(lengths=(16,), models=("lstm", "decoder"), width=16, layers=1, seeds=(0,),
                  num_steps=10, batch_size=8, test_batches=1),
}
_KEYS = ("length", "model")


def get_config(arg: str | None = None):
  parsed, size = spec.sized(arg, SIZES, keys=_KEYS)
  c = spec.base_config(__file__, model=parsed.get("model", "lstm"), task="listops",
                       smoke="smoke" in parsed)
  c.model.init = "torch"  # PyTorch's defaults (attnlab/models/initializers.py)
  length = int(parsed.get("length", size["lengths"][-1]))
  c.task.min_fraction = 0.25  # LRA: 500-2000 tokens at L = 2000
  c.train_min_length = c.train_max_length = length
  c.eval_lengths = [length]
  c.model.d_model = size["width"]
  c.model.num_layers = size["layers"]
  if "num_heads" in c.model:
    c.model.num_heads = 4 if size["width"] >= 32 else 2
  spec.set_schedule(c, num_steps=size["num_steps"], batch_size=size["batch_size"],
                    learning_rate=1e-3)
  c.eval_batches = size["test_batches"]
  return c


def get_sweep(arg: str | None = None) -> list[dict]:
  parsed, size = spec.sized(arg, SIZES, keys=_KEYS)
  lengths = [int(parsed["length"])] if "length" in parsed else size["lengths"]
  models = [parsed["model"]] if "model" in parsed else size["models"]
  return spec.grid(arg__length=lengths, arg__model=models, seed=size["seeds"])
