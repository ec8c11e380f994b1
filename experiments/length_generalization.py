"""Length generalisation on the Chomsky-hierarchy tasks (Delétang et al. 2023, "Neural Networks and
the Chomsky Hierarchy"): train on lengths 1..40 (drawn uniformly per step), test on every length
41..500, score = accuracy averaged over the test lengths.

  scripts/sweep.py --config experiments/length_generalization.py --workdir runs/lengthgen --workers 2
  scripts/plot.py --workdir runs/lengthgen       # -> runs/lengthgen/accuracy_vs_test_length.png

One cell of the grid (task x model), all its seeds:
  scripts/sweep.py --config experiments/length_generalization.py:task=parity,model=lstm \
      --workdir runs/lengthgen_parity_lstm
One run: scripts/train.py --config experiments/length_generalization.py:task=parity,model=lstm \
      --workdir runs/one
``smoke`` (``:task=parity,model=lstm,smoke``) shrinks lengths, steps and sizes to seconds;
``report`` is the size of docs/results.md. On parity, modular arithmetic and cycle navigation every
model with ``allow_negative_eigenvalues`` (deltanet, gated_deltanet, mamba2) runs once more with it
on (``:task=parity,model=mamba2`` holds both).
Differences from the paper: fewer steps and seeds (the paper trains 1M steps, 10 seeds), 128 test
examples per length, and the Transformer uses sinusoidal positions unless
``--config.model.position`` says otherwise. Batches are padded to power-of-two length buckets
(``length_buckets``; the models compute exactly what they compute unpadded).
"""

from __future__ import annotations

from attnlab.sweeps import spec
from attnlab.tasks import registry

TASKS = ("parity", "even_pairs", "cycle_navigation", "modular_arithmetic", "reverse_string",
         "duplicate_string", "bucket_sort")
MODELS = ("rnn", "lstm", "gru", "mingru", "transformer")
# The families of issue 29 (xLSTM's two cells and the xLSTM[7:1] network, Mamba-2, Gated DeltaNet)
# and DeltaNet: the three with ``allow_negative_eigenvalues`` run the state-tracking tasks again
# with it on (Grazzi et al. 2025: eigenvalues in [-1, 1] let linear RNNs solve parity).
NEW_FAMILIES = ("slstm", "mlstm", "xlstm", "mamba2", "gated_deltanet", "deltanet")
STATE_TRACKING = ("parity", "modular_arithmetic", "cycle_navigation")
SIZES = {
    "full": dict(train_max=40, test_lengths=tuple(range(41, 501)), seeds=(0, 1, 2),
                 num_steps=20_000, batch_size=128, tasks=TASKS, models=MODELS + NEW_FAMILIES),
    # docs/results.md: the paper's RNN, LSTM and Transformer, two seeds, every 5th test length.
    "report": dict(train_max=40, test_lengths=tuple(range(41, 501, 5)), seeds=(0, 1),
                   num_steps=2500, batch_size=64, tasks=TASKS, models=("rnn", "lstm", "transformer")),
    "smoke": dict(train_max=8, test_lengths=(12, 16), seeds=(0,), num_steps=20, batch_size=8,
                  tasks=("parity", "reverse_string"), models=("lstm", "transformer")),
}
_KEYS = ("task", "model")


def get_config(arg: str | None = None):
  parsed, size = spec.sized(arg, SIZES, keys=_KEYS)
  task, model = parsed.get("task", "parity"), parsed.get("model", "lstm")
  if task not in TASKS:
    raise ValueError(f"length_generalization: task={task!r}; allowed: {TASKS}")
  smoke = "smoke" in parsed
  c = spec.base_config(__file__, model=model, task=task, smoke=smoke)
  c.model.init = "torch"  # PyTorch's defaults (attnlab/models/initializers.py)
  shortest = registry.get_task(task, **{k: v for k, v in c.task.items() if k != "name"}).min_length
  # The paper samples 1..40; smoke keeps three lengths to keep the compiles few.
  c.train_min_length = max(shortest, size["train_max"] - 2 if smoke else 1)
  c.train_max_length = size["train_max"]
  c.eval_lengths = list(size["test_lengths"])
  spec.set_schedule(c, num_steps=size["num_steps"], batch_size=size["batch_size"],
                    learning_rate=1e-3, evals=1)  # 460 test lengths: evaluate once, at the end
  # One batch (128 examples) per test length: 58,880 test examples in all. With the default
  # length buckets the 40 train and 460 test lengths compile into a handful of programs.
  c.eval_batches = 1
  return c


def get_sweep(arg: str | None = None) -> list[dict]:
  parsed, size = spec.sized(arg, SIZES, keys=_KEYS)
  tasks = [parsed["task"]] if "task" in parsed else size["tasks"]
  models = [parsed["model"]] if "model" in parsed else size["models"]
  trials = spec.grid(arg__task=tasks, arg__model=models, seed=size["seeds"])
  return trials + spec.negative_eigenvalues(trials, tasks=STATE_TRACKING)
