"""``attnlab-plot`` / ``scripts/plot.py``: a sweep's results.csv as PNG figures.

  scripts/plot.py --workdir runs/distance [--metric accuracy] [--out DIR] [--x state_size]

Writes METRIC_vs_KEY.png for each numeric grid value that varies (distance, noise rate, width...),
METRIC_vs_test_length.png when each trial was evaluated at several lengths, and cost_vs_length.png
(throughput and peak memory) for cost sweeps; prints the paths. The metric defaults to the one the
sweep's table used. ``--x COLUMN`` plots the metric against that results column instead, one line
per model: ``--x state_size`` is Zoology's accuracy against the floats of state each model carries.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

from attnlab import plotting
from attnlab.cli import common
from attnlab.sweeps import results, runner

flags.DEFINE_string("workdir", None, "sweep directory holding results.csv", required=True)
flags.DEFINE_string("metric", None, "metric to plot (default: accuracy, mse or loss)")
flags.DEFINE_string("out", None, "directory for the figures (default: the workdir)")
flags.DEFINE_string("x", None, "a numeric results column for the x axis, one line per model "
                    "(e.g. state_size); default: every numeric grid value that varies")
FLAGS = flags.FLAGS
PROG = "plot"


@common.guard(PROG)
def main(argv):
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments: {argv[1:]}")
  rows = results.read_csv(os.path.join(FLAGS.workdir, "results.csv"))
  manifest = runner.read_json(os.path.join(FLAGS.workdir, "sweep.json")) or {}
  metric = FLAGS.metric or manifest.get("metric") or results.default_metric(rows)
  first = (runner.read_json(os.path.join(FLAGS.workdir, rows[0]["trial"], "config.json"))
           if rows else None)
  out = FLAGS.out or FLAGS.workdir
  if FLAGS.x:
    paths = [plotting.metric_against(rows, FLAGS.x, metric, results.grid_keys(rows), out)]
  else:
    paths = plotting.sweep_figures(rows, results.grid_keys(rows), metric, out,
                                   train_max_length=(first or {}).get("train_max_length"))
  if not paths:
    print("plot: nothing to plot (no finished trials, or no grid value varies)", file=sys.stderr)
    return 1
  for path in paths:
    print(path)
  return 0


def run():
  app.run(main, flags_parser=lambda argv: common.parse_flags(PROG, argv))


if __name__ == "__main__":
  run()
