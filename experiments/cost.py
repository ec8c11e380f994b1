"""Cost: training throughput (tokens/s) and peak memory against sequence length, per architecture.

The article's claim made visible: attention's time and memory grow quadratically with length
(unless a memory-efficient kernel keeps memory linear), the recurrent models' linearly. This sweep
measures rather than trains to convergence: each trial runs a few dozen training steps of a
parameter-matched model at one length through the ordinary training loop. ``tokens_per_s`` is the
median of the loop's logged throughput (the first logged window, which includes compilation, is
left out); ``peak_mb`` is the trial process's peak resident memory (``ru_maxrss``, so it includes the
JAX runtime's fixed few hundred MB). Run it with ``--workers 1`` so trials do not share the CPU.

  scripts/sweep.py --config experiments/cost.py --workdir runs/cost --workers 1
  scripts/plot.py --workdir runs/cost            # -> runs/cost/cost_vs_length.png

The length goes through the config argument (``:length=L``). ``:report`` is the size of
docs/results.md (every registered family); ``:smoke`` shrinks it to seconds.
"""

from __future__ import annotations

import os

from attnlab.sweeps import spec

# The families of issue 29: xLSTM's two cells and the xLSTM[7:1] network, Mamba-2, Gated DeltaNet.
NEW_FAMILIES = ("slstm", "mlstm", "xlstm", "mamba2", "gated_deltanet")
METRIC = "tokens_per_s"  # the table's default metric
SIZES = {
    "full": dict(lengths=(256, 1024, 4096, 16384), num_steps=30, batch_size=8,
                 target_params=100_000,
                 models=("rnn", "lstm", "gru", "mingru", "transformer") + NEW_FAMILIES,
                 # At 4 heads Gated DeltaNet has no width within 10% of 100k (64: 111k).
                 heads={"gated_deltanet": 2}),
    "report": dict(lengths=(256, 1024, 4096), num_steps=30, batch_size=8, target_params=100_000,
                   num_heads=2,
                   models=("rnn", "lstm", "gru", "mingru", "minlstm", "lru", "transformer",
                           "decoder", "swa", "linear_attention", "retnet", "gla", "mamba",
                           "hawk")),
    "smoke": dict(lengths=(16, 32), num_steps=6, batch_size=8, target_params=3_900,
                  models=("lstm", "transformer")),
}


def get_config(arg: str | None = None):
  parsed, size = spec.sized(arg, SIZES, keys=("length", "model"))
  c = spec.base_config(__file__, model=parsed.get("model", "lstm"), task="distant_dependency",
                       smoke="smoke" in parsed)
  c.model.init = "torch"  # PyTorch's defaults (attnlab/models/initializers.py)
  length = int(parsed.get("length", size["lengths"][-1]))
  c.task.distance = 1
  c.train_min_length = c.train_max_length = length
  c.eval_lengths = [length]
  c.model.target_params = size["target_params"]
  if "num_heads" in c.model and "num_heads" in size:
    # Widths in steps of 2 * num_heads: at 4 heads GLA and RetNet have no width within 10% of
    # the target (56 -> 88k parameters, 64 -> 110k).
    c.model.num_heads = size["num_heads"]
  if c.model.name in size.get("heads", {}):
    c.model.num_heads = size["heads"][c.model.name]
  spec.set_schedule(c, num_steps=size["num_steps"], batch_size=size["batch_size"], evals=1)
  c.log_every = max(1, c.num_steps // 6)
  c.eval_batches = 1
  return c


def get_sweep(arg: str | None = None) -> list[dict]:
  _, size = spec.sized(arg, SIZES, keys=("length", "model"))
  return spec.grid(arg__model=size["models"], arg__length=size["lengths"], seed=[0])


# --- The report's claims (scripts/report.py) -------------------------------------------------
# Thresholds are fixed before the runs. The render function reads the committed results
# (docs/results/<experiment>/) and returns (verdict, reason, Markdown body); it imports the report's
# machinery itself, so that training from this file does not.


def cost_claim(exps, results_dir):
  from attnlab import plotting  # pylint: disable=import-outside-toplevel
  from attnlab.report import data, kit  # pylint: disable=import-outside-toplevel
  exp = exps["cost"]
  key = "arg.length"
  rows = data.finished(exp.rows, "tokens_per_s")
  speed = data.pivot(rows, key, "tokens_per_s")
  memory = data.pivot(data.finished(exp.rows, "peak_mb"), key, "peak_mb", higher=False)
  fig = plotting.cost_figure(rows, key, ["arg.model"], os.path.join(exp.directory, "cost.png"))
  body_rows, exps_time = [], {}
  for model, cells in speed.items():
    xs = [x for x, c in cells.items() if c]
    step_s = [x / cells[x].mean for x in xs]  # seconds per sequence of length x (per batch row)
    exps_time[model] = kit.exponent(xs, step_s)
    mem = memory.get(model, {})
    mxs = [x for x in xs if mem.get(x)]
    body_rows.append([model] + [f"{cells[x].mean:,.0f}" for x in xs]
                     + [f"{exps_time[model]:.2f}",
                        f"{kit.exponent(mxs, [mem[x].mean for x in mxs]):.2f}"])
  lengths = sorted({x for cells in speed.values() for x in cells if cells[x]})
  body = [data.protocol_text(exp, "training tokens/s (median of the logged windows after the "
                                  "first) and the process's peak memory"),
          data.markdown(["model"] + [f"tokens/s at {x}" for x in lengths]
                        + ["time exponent", "memory exponent"], body_rows),
          "Exponents: least-squares slope of log(time per sequence) and log(peak MB) against "
          "log(length); peak MB includes the runtime's fixed few hundred MB.",
          kit.figure(fig, "cost", results_dir)]
  checks = []
  for name in ("lstm", "gru", "rnn"):
    if name in exps_time:
      checks.append((exps_time[name] <= 1.2, f"{name} time exponent {exps_time[name]:.2f} "
                                             "(linear: threshold <= 1.2)"))
  if "transformer" in exps_time:
    checks.append((exps_time["transformer"] >= 1.3, f"Transformer time exponent "
                   f"{exps_time['transformer']:.2f} (super-linear: threshold >= 1.3)"))
  longest = lengths[-1] if lengths else None
  lstm = kit.at(speed, "lstm", longest)
  for name in ("mingru", "minlstm", "lru"):
    c = kit.at(speed, name, longest)
    if c and lstm:
      checks.append((c.mean > lstm.mean, f"{name} at {longest}: {c.mean / lstm.mean:.2f}x the "
                                         "LSTM's tokens/s (threshold > 1x)"))
  return (*kit.verdict(checks), "\n\n".join(body))


def quadratic(exps, results_dir):
  from attnlab import plotting  # pylint: disable=import-outside-toplevel
  from attnlab.report import data, kit  # pylint: disable=import-outside-toplevel
  exp = exps["attention_cost"]
  records = [r for r in exp.extra.get("bench", []) if r.get("status") == "ok"]
  if not records:
    return "not run", "no attention benchmark committed", ""
  by_impl = data.grid(records, "impl")
  rows, checks, series_t, series_m = [], [], {}, {}
  for impl, recs in by_impl.items():
    recs = sorted(recs, key=lambda r: r["length"])
    xs = [r["length"] for r in recs]
    t, m = [r["median_s"] for r in recs], [max(r["peak_mb"], 1.0) for r in recs]
    et, em = kit.exponent(xs[-2:], t[-2:]), kit.exponent(xs[-2:], m[-2:])
    series_t[impl], series_m[impl] = (xs, t, [0.0] * len(xs)), (xs, m, [0.0] * len(xs))
    rows.append([impl] + [f"{a:.3g} s / {b:,.0f} MB" for a, b in zip(t, m)]
                + [f"{et:.2f}", f"{em:.2f}"])
    if impl == "naive":
      checks.append((et >= 1.6 and em >= 1.6, f"naive: time exponent {et:.2f}, memory {em:.2f} "
                                              "(quadratic: thresholds >= 1.6)"))
    if impl == "chunked":
      checks.append((em <= 1.2, f"chunked: memory exponent {em:.2f} (linear: threshold <= 1.2)"))
  lengths = sorted({r["length"] for r in records})
  fig_t = plotting.line_plot(series_t, os.path.join(exp.directory, "time.png"),
                             xlabel="length", ylabel="seconds (forward+backward)", logx=True,
                             logy=True, title="attention time vs length")
  fig_m = plotting.line_plot(series_m, os.path.join(exp.directory, "memory.png"),
                             xlabel="length", ylabel="peak MB", logx=True, logy=True,
                             title="attention peak memory vs length")
  body = [f"`{exp.protocol.get('command', '')}`: batch 4, 8 heads, head dim 64, float32, "
          "forward and backward, non-causal; peak MB is the child process's peak RSS minus an "
          "idle child's. Exponents: slope between the two longest lengths.",
          data.markdown(["impl"] + [str(x) for x in lengths] + ["time exponent",
                                                                "memory exponent"], rows),
          kit.figure(fig_t, "time", results_dir), kit.figure(fig_m, "memory", results_dir)]
  return (*kit.verdict(checks), "\n\n".join(body))


CLAIMS = (
    dict(title="Recurrence is sequential; attention and parallel scans are not",
         claim=("Recurrent networks process one step after another; attention and scans process "
                "the sequence in parallel, attention at quadratic cost."),
         check=("The classic RNNs' time per sequence grows linearly with length (exponent <= "
                "1.2), the Transformer's faster (>= 1.3), and each parallel-scan model trains "
                "more tokens/s than the LSTM at the longest length."),
         experiments=("cost",), render=cost_claim),
    dict(title="Quadratic cost",
         claim=("Attention costs time and memory quadratic in the length."),
         check=("Naive attention's time and memory grow with exponent >= 1.6; chunked attention's "
                "memory with exponent <= 1.2."),
         experiments=("attention_cost",), render=quadratic),
)
