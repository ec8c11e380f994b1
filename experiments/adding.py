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

import math
import os

from attnlab.sweeps import spec

SIZES = {
    "full": dict(lengths=(50, 100, 200, 400), seeds=(0, 1, 2), num_steps=5000, batch_size=64,
                 target_params=58_000, models=("rnn", "lstm", "gru", "mingru", "transformer")),
    # docs/results.md, under the converged protocol: the claim's three cells, the LSTM and GRU in
    # both blocks, the shortest and longest T, three seeds, two learning rates. Trials stop once
    # solved (MSE <= 0.01 on the validation batches 3 evaluations in a row) or at 20,000 steps,
    # validating every 500. 5000 steps was too few: the LSTM at T = 400 sat on the mean
    # predictor's plateau (0.169) until then in every trial, and left it at step 7000 under a
    # 20,000-step budget (docs/results/adding/controls.csv). The simple RNN's residual row (0.169
    # at T = 400 after 5000 steps; 36 min a trial at 20,000) and T = 200 are the full size's; minGRU
    # is not in the claim. Rerun this size whole: its trials carry the 5000-step trials' names, so
    # --resume_from the committed 5000-step results would skip them.
    "report": dict(lengths=(100, 400), seeds=(0, 1, 2), num_steps=20_000, evals=40,
                   batch_size=32, target_params=20_000, models=("rnn", "lstm", "gru"),
                   lrs=(1e-3, 3e-3),
                   variants=[(m, "block", ("residual",)) for m in ("lstm", "gru")]),
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
                    learning_rate=1e-3, evals=size.get("evals", 2))
  c.best_metric = "mse"
  return c


def get_sweep(arg: str | None = None) -> list[dict]:
  _, size = spec.sized(arg, SIZES, keys=("length", "model"))
  return spec.seed_major(spec.grid_with_variants(size, arg__model=size["models"],
                                                 arg__length=size["lengths"], seed=size["seeds"]))


# --- The report's claim (scripts/report.py) -------------------------------------------------
# Thresholds are fixed before the runs. The render function reads the committed results
# (docs/results/<experiment>/) and returns (verdict, reason, Markdown body); it imports the report's
# machinery itself, so that training from this file does not.

ADDING_BASELINE = 0.167  # adding problem: the MSE of predicting the mean


def gates(exps, results_dir):
  from attnlab import plotting  # pylint: disable=import-outside-toplevel
  from attnlab.report import data, kit  # pylint: disable=import-outside-toplevel
  exp = exps["adding"]
  table = data.pivot(exp.rows, "arg.length", "mse", higher=False)
  fig = plotting.line_plot(kit.series(table), os.path.join(exp.directory, "mse_vs_length.png"),
                           xlabel="sequence length T", ylabel="MSE", hline=ADDING_BASELINE,
                           logy=True, title="adding problem: MSE vs T (baseline 0.167 dotted)")
  body = [data.protocol_text(exp, "final test MSE, mean ± std over seeds (lower is better; "
                                  "predicting the mean gives 0.167)"),
          data.pivot_table(table, "T"), kit.figure(fig, "adding problem", results_dir)]
  lengths = sorted({x for cells in table.values() for x in cells})
  body += kit.training(exp, table, "arg.length", "T", lengths[-1], "mse", results_dir, logy=True,
                       hline=ADDING_BASELINE)
  body += kit.controls(exp, results_dir)
  # The checks read each model in its block of record (the first row of its name: the stacked
  # block; the residual rows are shown beside it) and the verdict rests on those cells only.
  read = {}
  checks = []
  for name in ("lstm", "gru"):
    cells = {x: c for x in lengths if (c := kit.at(table, name, x))}
    read.update({f"{name} at T={x}": c for x, c in cells.items()})
    worst = max((c.mean for c in cells.values()), default=math.nan)
    checks.append((worst <= 0.05, f"{name}: worst MSE over T {worst:.3f} (threshold <= 0.05)"))
  long = {x: c for x in lengths if x >= 200 and (c := kit.at(table, "rnn", x))}
  read.update({f"rnn at T={x}": c for x, c in long.items()})
  rnn = min((c.mean for c in long.values()), default=math.nan)
  checks.append((rnn >= 0.10, f"simple RNN: best MSE at T >= 200 {rnn:.3f} (threshold >= 0.10)"))
  return (*kit.verdict(checks, kit.overruled(exp, read)), "\n\n".join(body))


CLAIMS = (
    dict(title="Gates help",
         claim=("LSTM/GRU gates carry information across long gaps."),
         check=("On the adding problem the LSTM's and the GRU's MSE is <= 0.05 at every T; the "
                "simple RNN's stays >= 0.10 (the mean predictor's is 0.167) at T >= 200."),
         experiments=("adding",), render=gates),
)
