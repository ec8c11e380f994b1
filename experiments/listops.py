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

import os

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
                   test_batches=16, evals=10),
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
                    learning_rate=1e-3, evals=size.get("evals", 2))
  c.eval_batches = size["test_batches"]
  return c


def get_sweep(arg: str | None = None) -> list[dict]:
  parsed, size = spec.sized(arg, SIZES, keys=_KEYS)
  lengths = [int(parsed["length"])] if "length" in parsed else size["lengths"]
  models = [parsed["model"]] if "model" in parsed else size["models"]
  return spec.grid(arg__length=lengths, arg__model=models, seed=size["seeds"])


# --- The report's claim (scripts/report.py) --------------------------------------------------
# Thresholds are fixed before the runs. The render function reads the committed results
# (docs/results/listops/) and returns (verdict, reason, Markdown body).

# The best constant answer: the most frequent value (0) is 0.16 of the answers at L = 256 and 512
# (2,048 sampled expressions each, task.min_fraction 0.25).
MAJORITY = 0.16
MARGIN = 0.05  # above the best constant answer's accuracy, what counts as having learned something
# LRA leaderboard (Tay et al. 2021, Table 1), ListOps at lengths 500-2000, accuracy.
PUBLISHED_LISTOPS = {"transformer": 0.3637, "decoder": 0.3637, "linear_attention": 0.1613,
                     "s4": 0.596}


def listops_claim(exps, results_dir):
  from attnlab import plotting  # pylint: disable=import-outside-toplevel
  from attnlab.report import data, kit  # pylint: disable=import-outside-toplevel
  exp = exps["listops"]
  table = data.pivot(exp.rows, "arg.length", "accuracy")
  lengths = sorted({x for cells in table.values() for x in cells})
  fig = plotting.line_plot(kit.series(table), os.path.join(exp.directory, "accuracy.png"),
                           xlabel="sequence length", ylabel="accuracy", ylim=(-0.02, 1.02),
                           hline=0.1, title="ListOps accuracy (chance 0.1 dotted)")
  body = [data.protocol_text(exp, "final test accuracy of the expression's value, one seed"),
          data.pivot_table(table, "length"),
          "Published (LRA, lengths 500-2000): " + ", ".join(
              f"{m} {a:.3f}" for m, a in PUBLISHED_LISTOPS.items() if m != "decoder") + ".",
          kit.figure(fig, "ListOps", results_dir),
          *kit.training(exp, table, "arg.length", "length", lengths[-1], "accuracy",
                        results_dir, ylim=(-0.02, 1.02))]
  longest = lengths[-1]
  baseline = MAJORITY
  attention = kit.at(table, "decoder", longest)
  linear = kit.at(table, "linear_attention", longest)
  checks = [(attention is not None and attention.mean >= baseline + MARGIN,
             f"the decoder at length {longest}: {attention.mean:.3f} (threshold >= "
             f"{baseline + MARGIN:.3f}, the best constant answer plus {MARGIN})" if attention
             else "the decoder was not run"),
            (attention is not None and linear is not None and linear.mean < attention.mean,
             f"linear attention below softmax attention at {longest}: {linear.mean:.3f} "
             f"against {attention.mean:.3f}" if attention and linear
             else "linear attention was not run")]
  rests_on = {f"{m} at {longest}": c for m, c in (("decoder", attention),
                                                  ("linear_attention", linear))}
  return (*kit.verdict(checks, rests_on), "\n\n".join(body))


CLAIMS = (
    dict(title="ListOps (Long Range Arena)",
         claim=("On ListOps softmax attention learns more than the best constant answer, and "
                "linear attention less than softmax attention (LRA: Transformer 36.4%, linear "
                "Transformer 16.1%)."),
         check=(f"Test accuracy at the longest :report length. Holds if the decoder beats the "
                f"best constant answer ({MAJORITY}, the most frequent value) by >= {MARGIN} and "
                "linear attention scores below the decoder."),
         experiments=("listops",), render=listops_claim),
)
