"""The default experiment: accuracy against dependency distance, per architecture.

The distant-dependency task puts one key token exactly ``d`` positions before the query at the end
of a fixed-length sequence (filler elsewhere); the model must output the key. Every model (simple
RNN, LSTM, GRU, the parallel-scan minGRU and a Transformer encoder) is sized to the same parameter
count (``model.target_params``), trained at each distance, and evaluated on fresh sequences.

  scripts/sweep.py --config experiments/distance.py --workdir runs/distance --workers 2
  scripts/plot.py --workdir runs/distance        # -> runs/distance/accuracy_vs_distance.png

Variants: ``:report`` (the size of docs/results.md), ``:demo`` (what scripts/demo.sh runs: fewer distances and steps, one seed, minutes on a
2-core CPU), ``:smoke`` (seconds; tests). One trial alone:

  scripts/train.py --config experiments/distance.py:model=gru --config.task.distance=64 \
      --workdir runs/one
"""

from __future__ import annotations

import os

from attnlab.sweeps import spec

MODELS = ("rnn", "lstm", "gru", "mingru", "transformer")
# The families of issue 29: xLSTM's two cells and the xLSTM[7:1] network, Mamba-2, Gated DeltaNet.
NEW_FAMILIES = ("slstm", "mlstm", "xlstm", "mamba2", "gated_deltanet")
SIZES = {
    "full": dict(distances=(1, 2, 4, 8, 16, 32, 64, 128, 256), seeds=(0, 1, 2), num_steps=3000,
                 batch_size=64, target_params=58_000, num_layers=2, models=MODELS + NEW_FAMILIES,
                 # Widths step by 2 * num_heads: at 4 heads no sLSTM is within 10% of 58k
                 # (the nearest, d_model 48, has 49.7k); at 2 heads 48 gives 59.0k.
                 heads={"slstm": 2}),
    "demo": dict(distances=(2, 8, 32), seeds=(0,), num_steps=600, batch_size=32,
                 target_params=14_000, num_layers=1, models=MODELS),
    # docs/results.md: three distances, three seeds, two learning rates (issue 26's pilot: the
    # LSTM solves distance 16 at both 1e-3 and 3e-3 under torch init), the classic cells in both
    # blocks, and Mamba as the selective state-space model. Trials train until solved (accuracy
    # >= 0.99 on the validation batches for 3 evaluations in a row) or for 6000 steps, four times
    # the earlier budget, validating every 300.
    "report": dict(distances=(4, 16, 64), seeds=(0, 1, 2), num_steps=6000, evals=20,
                   batch_size=32, target_params=20_000, num_layers=1,
                   models=MODELS + ("mamba",), lrs=(1e-3, 3e-3),
                   variants=[(m, "block", ("residual",)) for m in ("rnn", "lstm", "gru")]),
    "smoke": dict(distances=(2, 4), seeds=(0,), num_steps=20, batch_size=8, target_params=3_900,
                  num_layers=1, models=("lstm", "transformer")),
}


def get_config(arg: str | None = None):
  parsed, size = spec.sized(arg, SIZES, keys=("model",))
  c = spec.base_config(__file__, model=parsed.get("model", "lstm"), task="distant_dependency",
                       smoke="smoke" in parsed)
  c.model.init = "torch"  # PyTorch's defaults (attnlab/models/initializers.py)
  length = max(size["distances"]) + 1  # one length for every distance: only d changes
  c.task.distance = size["distances"][-1]
  c.train_min_length = c.train_max_length = length
  c.eval_lengths = [length]
  c.model.target_params = size["target_params"]
  c.model.num_layers = size["num_layers"]
  if c.model.name in size.get("heads", {}):
    c.model.num_heads = size["heads"][c.model.name]
  spec.set_schedule(c, num_steps=size["num_steps"], batch_size=size["batch_size"],
                    learning_rate=3e-3, evals=size.get("evals", 2))
  c.eval_batches = 4
  return c


def get_sweep(arg: str | None = None) -> list[dict]:
  _, size = spec.sized(arg, SIZES, keys=("model",))
  return spec.grid_with_variants(size, arg__model=size["models"],
                                 task__distance=size["distances"], seed=size["seeds"])


# --- The report's claims (scripts/report.py) -------------------------------------------------
# Thresholds are fixed before the runs. The render function reads the committed results
# (docs/results/<experiment>/) and returns (verdict, reason, Markdown body); it imports the report's
# machinery itself, so that training from this file does not.

CHANCE_DISTANCE = 1 / 8  # distant dependency: 8 key symbols


def forget(exps, results_dir):
  from attnlab import plotting  # pylint: disable=import-outside-toplevel
  from attnlab.report import data, kit  # pylint: disable=import-outside-toplevel
  exp = exps["distance"]
  table = data.pivot(exp.rows, "task.distance", "accuracy")
  far = max(x for cells in table.values() for x in cells)
  fig = plotting.line_plot(kit.series(table),
                           os.path.join(exp.directory, "accuracy_vs_distance.png"),
                           xlabel="distance", ylabel="accuracy", logx=True, ylim=(-0.02, 1.02),
                           hline=CHANCE_DISTANCE, title="accuracy vs dependency distance "
                           "(mean ± std over seeds, best learning rate)")
  body = [data.protocol_text(exp, "final test accuracy, mean ± std over seeds at the learning "
                                  "rate with the best mean validation accuracy (lr)"),
          data.pivot_table(table, "distance"), kit.figure(fig, "accuracy vs distance", results_dir),
          *kit.training(exp, table, "task.distance", "distance", far, "accuracy", results_dir,
                        ylim=(-0.02, 1.02), hline=CHANCE_DISTANCE),
          *kit.controls(exp, results_dir)]
  family = lambda *names: {m: cells.get(far) for m, cells in table.items()  # noqa: E731
                           if m.split(" ")[0] in names and cells.get(far)}
  rnns, gated, attention = family("rnn"), family("lstm", "gru"), family("transformer")
  rnn = max(rnns.items(), key=lambda kv: kv[1].mean, default=None)
  best = max(gated.items(), key=lambda kv: kv[1].mean, default=None)
  att = next(iter(attention.values()), None)
  checks = [(rnn is not None and rnn[1].mean <= 0.25,
             f"the better simple RNN ({rnn[0]}) at distance {far}: {rnn[1].mean:.3f} "
             "(threshold <= 0.25)" if rnn else "the simple RNN was not run"),
            (best is not None and best[1].mean >= 0.9,
             f"the best gated RNN ({best[0]}) at distance {far}: {best[1].mean:.3f} "
             "(threshold >= 0.9)" if best else "no gated RNN was run"),
            (att is not None and att.mean >= 0.9,
             f"the Transformer at distance {far}: {att.mean:.3f} (threshold >= 0.9)"
             if att else "the Transformer was not run")]
  # A verdict rests on every simple RNN (the best must fail), the gated RNN that passes (or all
  # of them when none does) and the Transformer.
  rests_on = {**rnns, **attention,
              **({best[0]: best[1]} if best and best[1].mean >= 0.9 else gated)}
  rests_on = {f"{m} at {far}": c for m, c in rests_on.items()}
  lag = exp.extra.get("gradient_lag")
  if lag:
    series, ratios = {}, {}
    for trial, p in lag.items():
      norms = dict(zip(p["distances"], p["mean_grad_norm"]))
      series[p["model"]] = (p["distances"], p["mean_grad_norm"], [0.0] * len(norms))
      if norms.get(0) and p.get("distance") in norms:
        ratios[p["model"]] = norms[p["distance"]] / norms[0]
    fig = plotting.line_plot(series, os.path.join(exp.directory, "gradient_lag.png"),
                             xlabel="positions back from the query", ylabel="mean gradient norm",
                             logy=True, title=f"gradient norm against lag (distance "
                             f"{next(iter(lag.values()))['distance']})")
    body += ["Gradient of the loss at the query with respect to each embedded input position "
             "(`scripts/evaluate.py --gradient_lag`), one seed per model; the ratio is the norm "
             "at the key over the norm at the query:",
             data.markdown(["model", "norm at key / norm at query"],
                           [[m, f"{r:.2e}"] for m, r in ratios.items()]),
             kit.figure(fig, "gradient lag", results_dir)]
    if "rnn" in ratios and ("lstm" in ratios or "gru" in ratios):
      best_gated = max(ratios.get("lstm", 0.0), ratios.get("gru", 0.0))
      checks.append((ratios["rnn"] * 100 <= best_gated,
                     f"key/query gradient ratio: simple RNN {ratios['rnn']:.1e} against "
                     f"{best_gated:.1e} for the better gated RNN (threshold: 100x smaller)"))
  return (*kit.verdict(checks, rests_on), "\n\n".join(body))


def maps(exps, results_dir):
  from attnlab.report import data, kit  # pylint: disable=import-outside-toplevel
  exp = exps["distance"]
  att = exp.extra.get("attention")
  if not att:
    return "not run", "no attention analysis committed", ""
  best = max((w, layer, h) for layer, heads in att["mass_on_key"].items()
             for h, w in enumerate(heads))
  body = [f"The trained Transformer `{att['trial']}` (distance {att['distance']}, length "
          f"{att['length']}) over {att['examples']} evaluation examples: the mean attention "
          "weight from the query (last position) onto the key, per layer and head (uniform "
          f"attention would give {att['uniform']:.3f}):",
          data.markdown(["layer"] + [f"head {h}" for h in range(len(next(iter(
              att["mass_on_key"].values()))))],
                        [[layer] + [f"{w:.3f}" for w in heads]
                         for layer, heads in att["mass_on_key"].items()])]
  body += [kit.figure(os.path.join(exp.directory, path), "attention map", results_dir)
           for path in att["maps"][:1]]
  ok = best[0] >= 0.5
  return (("yes" if ok else "no"),
          f"the strongest head ({best[1]}, head {best[2]}) puts {best[0]:.3f} of the query's "
          "attention on the key (threshold >= 0.5)", "\n\n".join(body))


CLAIMS = (
    dict(title="Simple RNNs forget",
         claim=("A simple RNN loses the context it needs beyond a short distance (vanishing "
                "gradients); gated RNNs and attention keep it."),
         check=("At the longest distance the simple RNN's accuracy is <= 0.25 (chance 0.125) "
                "while the better of LSTM/GRU and the Transformer reach >= 0.9; the simple RNN's "
                "gradient at the key, relative to its gradient at the query, is at least 100x "
                "smaller than the better gated RNN's."),
         experiments=("distance",), render=forget),
    dict(title="Attention maps explain",
         claim=("Attention weights read as a heat map of what the model used."),
         check=("Some head of a Transformer trained on the distant dependency puts >= 0.5 of the "
                "query's attention on the key."),
         experiments=("distance",), render=maps),
)
