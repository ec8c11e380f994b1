"""``attnlab-plot`` / ``scripts/plot.py``: a sweep's results.csv as PNG figures.

  scripts/plot.py --workdir runs/distance [--metric accuracy] [--out DIR]

Writes METRIC_vs_KEY.png for each numeric grid value that varies (distance, noise rate, width...),
METRIC_vs_test_length.png when each trial was evaluated at several lengths, and cost_vs_length.png
(throughput and peak memory) for cost sweeps; prints the paths. The metric defaults to the one the
sweep's table used.
"""

from __future__ import annotations

import os
import sys

from absl import flags

from attnlab import plotting
from attnlab.cli import common
from attnlab.sweeps import results, runner

flags.DEFINE_string("workdir", None, "sweep directory holding results.csv", required=True)
flags.DEFINE_string("metric", None, "metric to plot (default: accuracy, mse or loss)")
flags.DEFINE_string("out", None, "directory for the figures (default: the workdir)")
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
  paths = plotting.sweep_figures(rows, results.grid_keys(rows), metric, FLAGS.out or FLAGS.workdir,
                                 train_max_length=(first or {}).get("train_max_length"))
  if not paths:
    print("plot: nothing to plot (no finished trials, or no grid value varies)", file=sys.stderr)
    return 1
  for path in paths:
    print(path)
  return 0


def run():
  common.run(PROG, main)


if __name__ == "__main__":
  run()
