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

import os

from attnlab.sweeps import spec
from attnlab.tasks import word_problem

SIZES = {
    "full": dict(groups=word_problem.GROUPS, lengths=(4, 8, 16, 32, 64, 128, 256),
                 models=("rnn", "lstm", "decoder", "mamba", "gla", "deltanet", "hawk"),
                 layers=(1, 2, 3, 4), width=128, seeds=(0, 1, 2), num_steps=10_000, batch_size=64),
    # docs/results.md: a non-solvable group and its two controls, a recurrence, attention and an
    # SSM, 1 and 2 layers: 72 runs, validated every 150 steps and stopped once solved, about 40
    # minutes of this 2-core CPU with --workers 2. One seed and one learning rate: the budget.
    "report": dict(groups=("s5", "a4xz5", "z60"), lengths=(8, 16, 32, 64),
                   models=("lstm", "decoder", "mamba"), layers=(1, 2), width=64, seeds=(0,),
                   num_steps=1500, batch_size=32, evals=10),
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
                    learning_rate=1e-3, evals=size.get("evals", 2))
  return c


def get_sweep(arg: str | None = None) -> list[dict]:
  parsed, size = spec.sized(arg, SIZES, keys=_KEYS)
  groups = [parsed["group"]] if "group" in parsed else size["groups"]
  lengths = [int(parsed["length"])] if "length" in parsed else size["lengths"]
  models = [parsed["model"]] if "model" in parsed else size["models"]
  return spec.grid(arg__group=groups, arg__length=lengths, arg__model=models,
                   model__num_layers=size["layers"], seed=size["seeds"])


# --- The report's claim (scripts/report.py) --------------------------------------------------
# Thresholds are fixed before the runs. The render function reads the committed results
# (docs/results/<experiment>/) and returns (verdict, reason, Markdown body); it imports the report's
# machinery itself, so that training from this file does not.

SOLVES = 0.9  # per-position test accuracy that counts as tracking the state
# Merrill, Petty & Sabharwal (2024), Figure 3 (trained and tested at each length): the layers a
# model needs to reach 90% on the word problem as the length grows.
PUBLISHED_WORD_PROBLEM = {
    "s5": "RNN/LSTM: 1 layer at every length; Transformer and Mamba: layers grow with length",
    "a4xz5": "every model: few layers, not growing with length (solvable)",
    "z60": "every model: 1-2 layers at every length (abelian)",
}


def word_problem_claim(exps, results_dir):
  from attnlab import plotting  # pylint: disable=import-outside-toplevel
  from attnlab.report import data, kit  # pylint: disable=import-outside-toplevel
  exp = exps["state_tracking"]
  label = lambda r: f"{r['arg.model']} ({r['model.num_layers']} layer" + (  # noqa: E731
      "s)" if r["model.num_layers"] > 1 else ")")
  tables = {g: data.pivot([r for r in exp.rows if r.get("arg.group") == g], "arg.length",
                          "accuracy", row_key=label) for g in PUBLISHED_WORD_PROBLEM}
  tables = {g: t for g, t in tables.items() if t}
  body = [data.protocol_text(exp, "final per-position test accuracy of the running product, one "
                                  "seed; each length its own run, trained and tested at it")]
  for group, table in tables.items():
    fig = plotting.line_plot(kit.series(table), os.path.join(exp.directory, f"{group}.png"),
                             xlabel="sequence length", ylabel="accuracy", logx=True,
                             ylim=(-0.02, 1.02), title=f"word problem on {group}")
    body += [f"**{group}** (published: {PUBLISHED_WORD_PROBLEM[group]})",
             data.pivot_table(table, "length"), data.steps_table(table, "length"),
             kit.figure(fig, f"word problem {group}", results_dir)]
  s5, z60 = tables.get("s5", {}), tables.get("z60", {})
  longest = max((x for t in tables.values() for cells in t.values() for x in cells), default=None)
  lstm = s5.get("lstm (1 layer)", {})
  shallow = {m: s5.get(m, {}).get(longest) for m in ("decoder (1 layer)", "mamba (1 layer)")}
  control = {m: z60.get(m, {}).get(longest) for m in (
      "decoder (1 layer)", "decoder (2 layers)", "mamba (1 layer)", "mamba (2 layers)")}
  best = max(((m, c) for m, c in control.items() if c), key=lambda mc: mc[1].mean, default=None)
  worst_lstm = min((c.mean for c in lstm.values() if c), default=float("nan"))
  checks = [(worst_lstm >= SOLVES, f"the 1-layer LSTM on s5: lowest {worst_lstm:.3f} over the "
                                   f"lengths (threshold >= {SOLVES})")]
  for m, c in shallow.items():
    if c:
      checks.append((c.mean < SOLVES, f"{m} on s5 at length {longest}: {c.mean:.3f} (threshold "
                                      f"< {SOLVES})"))
  checks.append((best is not None and best[1].mean >= SOLVES,
                 f"control: the best decoder/mamba on z60 at length {longest} ({best[0]}): "
                 f"{best[1].mean:.3f} (threshold >= {SOLVES})" if best else "z60 was not run"))
  if best is None or best[1].mean < SOLVES:  # the control failed: nothing here is the group's
    return (kit.UNDETERMINED, "the control failed (" + checks[-1][1] + "): the budget or the "
            "setup, not the group, decides these cells. Checks as they stand: " + "; ".join(
                ("holds: " if ok else "fails: ") + text for ok, text in checks[:-1]),
            "\n\n".join(body))
  rests_on = {**{f"lstm (1 layer) on s5 at {x}": c for x, c in lstm.items()},
              **{f"{m} on s5 at {longest}": c for m, c in shallow.items()},
              **({f"{best[0]} on z60 at {longest}": best[1]} if best else {})}
  return (*kit.verdict(checks, rests_on), "\n\n".join(body))


CLAIMS = (
    dict(title="State tracking needs recurrence (Merrill et al. 2024)",
         claim=("A one-layer recurrent network tracks the state of a non-solvable group (S5) at "
                "any length; a constant-depth Transformer or diagonal SSM (Mamba) cannot, though "
                "both handle a solvable control (Z60)."),
         check=(f"Per-position test accuracy on the word problem, one seed, each length its own "
                f"run. Holds if the 1-layer LSTM reaches >= {SOLVES} on s5 at every length, the "
                f"1-layer decoder and 1-layer Mamba stay below {SOLVES} on s5 at the longest "
                f"length, and the better of decoder/Mamba (1 or 2 layers) reaches >= {SOLVES} on "
                "z60 at the longest length (the control: a failure on s5 is the group's, not the "
                "length's or the budget's)."),
         experiments=("state_tracking",), render=word_problem_claim),
)
