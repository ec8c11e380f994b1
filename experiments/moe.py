"""Mixture-of-experts against a dense feed-forward at equal active parameters.

The article names mixture-of-experts as the next step after attention: more parameters at the same
compute per token. A decoder-only Transformer on multi-query associative recall (MQAR), once with
its dense feed-forward (d_ff) and once with ``model.moe_experts`` experts of the same size routed
top-1 (Switch), so every token runs one feed-forward of d_ff either way: the same active parameters,
E times the feed-forward parameters. The table gives accuracy and training tokens/s.

  scripts/sweep.py --config experiments/moe.py --workdir runs/moe --workers 2
  scripts/plot.py --workdir runs/moe             # -> runs/moe/accuracy_vs_moe_experts.png

Variants: ``:report`` (the size of docs/results.md), ``:smoke`` (seconds; tests).
"""

from __future__ import annotations

from attnlab.sweeps import spec

SIZES = {
    "full": dict(experts=(0, 4, 8, 16), length=128, kv_pairs=16, d_model=64, seeds=(0, 1, 2),
                 num_steps=5000, batch_size=64),
    # docs/results.md, under the converged protocol: MQAR's width-64 cell (mqar.py:report), three
    # seeds, two learning rates; trials stop once solved (accuracy >= 0.99 on the validation
    # batches 3 evaluations in a row) or at 4000 steps, twice the earlier budget, validating
    # every 250.
    "report": dict(experts=(0, 4, 8), length=64, kv_pairs=8, d_model=64, seeds=(0, 1, 2),
                   num_steps=4000, evals=16, batch_size=32, lrs=(1e-3, 3e-3)),
    "smoke": dict(experts=(0, 2), length=16, kv_pairs=2, d_model=16, seeds=(0,), num_steps=20,
                  batch_size=8),
}


def get_config(arg: str | None = None):
  parsed, size = spec.sized(arg, SIZES)
  c = spec.base_config(__file__, model="decoder", task="mqar", smoke="smoke" in parsed)
  c.model.init = "torch"  # PyTorch's defaults (attnlab/models/initializers.py)
  c.task.num_kv_pairs = size["kv_pairs"]
  c.train_min_length = c.train_max_length = size["length"]
  c.eval_lengths = [size["length"]]
  c.model.d_model = size["d_model"]
  c.model.num_layers = 2
  c.model.moe_top_k = 1  # one expert per token: the dense model's active parameters
  c.model.moe_capacity_factor = 1.25
  spec.set_schedule(c, num_steps=size["num_steps"], batch_size=size["batch_size"],
                    learning_rate=1e-3, evals=size.get("evals", 2))
  return c


def get_sweep(arg: str | None = None) -> list[dict]:
  _, size = spec.sized(arg, SIZES)
  return spec.seed_major(spec.grid_with_variants(size, model__moe_experts=size["experts"],
                                                 seed=size["seeds"]))


# --- The report's claim (scripts/report.py) -------------------------------------------------
# Thresholds are fixed before the runs. The render function reads the committed results
# (docs/results/<experiment>/) and returns (verdict, reason, Markdown body); it imports the report's
# machinery itself, so that training from this file does not.


def moe(exps, results_dir):
  import statistics  # pylint: disable=import-outside-toplevel
  from attnlab.report import data, kit  # pylint: disable=import-outside-toplevel
  exp = exps["moe"]
  acc = data.pivot(exp.rows, "model.moe_experts", "accuracy", row_key=lambda r: "decoder")
  done = data.finished(exp.rows, "accuracy")
  params = {r["model.moe_experts"]: r["param_count"] for r in done}
  # Speed does not depend on the learning rate: every finished trial of an expert count counts.
  speed = {e: statistics.median(float(r["tokens_per_s"]) for r in members)
           for e, members in data.grid(done, "model.moe_experts").items()}
  cells = acc["decoder"]
  dense = cells.get(0)
  rows = [["dense" if e == 0 else f"{e} experts, top-1", f"{params.get(e, 0):,}", c.text(),
           c.steps_text(), f"{speed[e]:,.0f}"] for e, c in cells.items() if c is not None]
  body = [data.protocol_text(exp, "final per-query test accuracy on MQAR, mean ± std over seeds "
                                  "at the learning rate with the best mean validation accuracy "
                                  "(lr); every row runs one feed-forward of the same width per "
                                  "token; tokens/s: the median over every trial of the row"),
          data.markdown(["feed-forward", "parameters", "accuracy", "steps to solve", "tokens/s"],
                        rows)]
  checks = []
  if dense:
    best_e = max((e for e in cells if e and cells[e]), key=lambda e: cells[e].mean, default=None)
    if best_e is not None:
      gain = cells[best_e].mean - dense.mean
      slow = speed[0] / speed[best_e]
      checks.append((gain >= 0.02, f"{best_e} experts: accuracy {gain:+.3f} against dense "
                                   "(threshold >= +0.02)"))
      checks.append((slow <= 1.5, f"at {slow:.2f}x the dense step time (threshold <= 1.5x)"))
  return (*kit.verdict(checks, kit.cells(acc, "experts ")), "\n\n".join(body))


CLAIMS = (
    dict(title="Mixture of experts",
         claim=("Mixture-of-experts is the next step: more parameters at the same compute per "
                "token."),
         check=("A top-1 MoE feed-forward beats the dense one by >= 0.02 accuracy at <= 1.5x its "
                "step time."),
         experiments=("moe",), render=moe),
)
