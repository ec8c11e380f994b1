"""Multi-query associative recall (MQAR) against model width: the Zoology setting (Arora et al.
2024). Attention solves MQAR at small width; fixed-state recurrences need their state to grow with
the number of key-value pairs, so their accuracy climbs with ``model.d_model``.

  scripts/sweep.py --config experiments/mqar.py --workdir runs/mqar --workers 2
  scripts/plot.py --workdir runs/mqar            # -> runs/mqar/accuracy_vs_d_model.png

Models are causal, as in Zoology: the decoder-only Transformer and the recurrent models. No
parameter matching here: width is the knob. ``conv_widths`` adds every decoder trial again with a
short causal convolution before its attention (``model.conv_width``): plain attention must first
learn a previous-token head, and sits on a plateau near 1 / num_kv_pairs for thousands of steps
(longer than the CPU budgets here); with the convolution it recalls within a few hundred. ``:report`` is the size of docs/results.md; ``:smoke`` shrinks it to seconds.
"""

from __future__ import annotations

from attnlab.sweeps import spec

# The families of issue 29: xLSTM's two cells and the xLSTM[7:1] network, Mamba-2, Gated DeltaNet.
NEW_FAMILIES = ("slstm", "mlstm", "xlstm", "mamba2", "gated_deltanet")
SIZES = {
    "full": dict(widths=(32, 64, 128, 256), length=128, kv_pairs=16, seeds=(0, 1, 2),
                 num_steps=5000, batch_size=64,
                 models=("decoder", "lstm", "gru", "mingru", "lru") + NEW_FAMILIES,
                 conv_widths=(4,)),
    # docs/results.md: attention (plain, and with the short convolution that skips its induction
    # plateau), a classic and a parallel-scan recurrence, and three sub-quadratic families; one
    # seed and the better of two learning rates (Zoology's protocol), to fit about an hour of a
    # 2-core CPU.
    "report": dict(widths=(16, 32, 64), length=64, kv_pairs=8, seeds=(0,), num_steps=2000,
                   batch_size=32, lrs=(1e-3, 3e-3), conv_widths=(4,),
                   models=("decoder", "gru", "mingru", "linear_attention", "gla", "mamba")),
    "smoke": dict(widths=(8, 16), length=16, kv_pairs=2, seeds=(0,), num_steps=20, batch_size=8,
                  models=("decoder", "lstm")),
}


def get_config(arg: str | None = None):
  parsed, size = spec.sized(arg, SIZES, keys=("model",))
  c = spec.base_config(__file__, model=parsed.get("model", "decoder"), task="mqar",
                       smoke="smoke" in parsed)
  c.model.init = "torch"  # PyTorch's defaults (attnlab/models/initializers.py)
  c.task.num_kv_pairs = size["kv_pairs"]
  c.train_min_length = c.train_max_length = size["length"]
  c.eval_lengths = [size["length"]]
  c.model.d_model = size["widths"][-1]
  c.model.num_layers = 2
  spec.set_schedule(c, num_steps=size["num_steps"], batch_size=size["batch_size"],
                    learning_rate=1e-3)
  return c


def get_sweep(arg: str | None = None) -> list[dict]:
  _, size = spec.sized(arg, SIZES, keys=("model",))
  return spec.grid_with_variants(size, arg__model=size["models"], model__d_model=size["widths"],
                                 seed=size["seeds"])
