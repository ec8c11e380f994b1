"""State tracking and the eigenvalue range (Grazzi et al. 2025, "Unlocking State-Tracking in Linear
RNNs Through Negative Eigenvalues"): parity and modular arithmetic (the Chomsky-hierarchy tasks)
for the linear recurrences whose transition can take negative eigenvalues (deltanet,
gated_deltanet, mamba2), each with its eigenvalues in [0, 1] and again in [-1, 1]
(``model.allow_negative_eigenvalues``), against the LSTM and the decoder-only Transformer.

  scripts/sweep.py --config experiments/negative_eigenvalues.py:report --workdir runs/negative_eigenvalues \
      --workers 1

One run: scripts/train.py --config experiments/negative_eigenvalues.py:task=parity,model=deltanet \
      --config.model.allow_negative_eigenvalues=true --workdir runs/one

Training lengths 1..40 drawn per example and padded to one bucket (one compiled training step);
the test lengths inside that range are the check's (docs/results.md), those beyond it show the
length generalisation the paper measures (it tests on 40..256). ``:report`` is the size of
docs/results.md; ``:smoke`` shrinks it to seconds.
"""

from __future__ import annotations

from attnlab.sweeps import spec

TASKS = ("parity", "modular_arithmetic")
FAMILIES = ("deltanet", "gated_deltanet", "mamba2")  # the models with allow_negative_eigenvalues
MODELS = FAMILIES + ("lstm", "decoder")
# Trained in their step-by-step form: the same function as the chunked one (tests/models), and at
# these lengths the faster one on the 2-core CPU (DeltaNet at length 40: 20 training steps/s
# against 5). Mamba-2's chunked form is the faster of its two (6 steps/s against 3).
STEP_BY_STEP = ("deltanet", "gated_deltanet")
SIZES = {
    "full": dict(train_max=40, test_lengths=(10, 20, 30, 40, 80, 160, 256), seeds=(0, 1, 2),
                 num_steps=10_000, batch_size=64, d_model=64, tasks=TASKS, models=MODELS,
                 lrs=(1e-3, 3e-3)),
    # docs/results.md: two seeds and one learning rate (3e-3), to fit about 40 minutes of the
    # 2-core CPU. Chosen on pilots of parity at 3e-3: DeltaNet with negative eigenvalues trained
    # to 1.0 by step 150, Mamba-2 with them by 300, the LSTM by 400, DeltaNet without them stayed
    # at 0.5 for 600 steps; on modular arithmetic DeltaNet with them stayed near 0.25 for 1250.
    "report": dict(train_max=40, test_lengths=(10, 20, 30, 40, 80, 160), seeds=(0, 1),
                   num_steps=600, batch_size=64, d_model=32, tasks=TASKS, models=MODELS),
    "smoke": dict(train_max=8, test_lengths=(4, 8, 16), seeds=(0,), num_steps=10, batch_size=8,
                  d_model=16, tasks=("parity",), models=("deltanet", "lstm")),
}
_KEYS = ("task", "model")


def get_config(arg: str | None = None):
  parsed, size = spec.sized(arg, SIZES, keys=_KEYS)
  task, model = parsed.get("task", "parity"), parsed.get("model", "deltanet")
  if task not in TASKS:
    raise ValueError(f"negative_eigenvalues: task={task!r}; allowed: {TASKS}")
  c = spec.base_config(__file__, model=model, task=task, smoke="smoke" in parsed)
  c.model.init = "torch"  # PyTorch's defaults (attnlab/models/initializers.py)
  c.model.d_model = size["d_model"]
  c.model.num_layers = 2
  if model in STEP_BY_STEP:
    c.model.impl = "reference"
  c.train_min_length, c.train_max_length = 1, size["train_max"]
  # Each example's length drawn apart, every batch padded to the longest training length: one
  # compiled training step instead of one per power-of-two bucket.
  c.train_length_draw = "example"
  c.eval_lengths = list(size["test_lengths"])
  c.length_buckets = ",".join(str(n) for n in sorted({size["train_max"], *size["test_lengths"]})
                              if n >= size["train_max"])
  spec.set_schedule(c, num_steps=size["num_steps"], batch_size=size["batch_size"],
                    learning_rate=3e-3, evals=1)
  c.eval_batches = 2  # 128 test examples per length at batch 64
  return c


def get_sweep(arg: str | None = None) -> list[dict]:
  parsed, size = spec.sized(arg, SIZES, keys=_KEYS)
  tasks = [parsed["task"]] if "task" in parsed else size["tasks"]
  models = [parsed["model"]] if "model" in parsed else size["models"]
  # Each trial followed by its twin with negative eigenvalues, so that a sweep cut short holds
  # both sides of the comparisons it reached.
  return [twin for trial in spec.grid_with_variants(size, arg__task=tasks, arg__model=models,
                                                    seed=size["seeds"])
          for twin in [trial, *spec.negative_eigenvalues([trial])]]
