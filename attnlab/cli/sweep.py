"""``attnlab-sweep`` / ``scripts/sweep.py``: an experiment file's grid as training runs; resumable.

  scripts/sweep.py --config experiments/distance.py[:ARG] --workdir runs/distance [--workers 2]

Writes WORKDIR/<trial>/ (each an ordinary training workdir), WORKDIR/results.csv (one row per trial)
and WORKDIR/results.md (mean ± std over seeds and the best seed), and prints the table. Running the
same command again skips finished trials and resumes interrupted ones. Exits 1 if a trial failed,
2 on bad input.
"""

from __future__ import annotations

import sys

from absl import app, flags

from attnlab.cli import common, malloc
from attnlab.sweeps import sweep

flags.DEFINE_string("config", None, "experiment file, optionally with :ARG", required=True)
flags.DEFINE_string("workdir", None, "sweep directory (one subdirectory per trial)", required=True)
flags.DEFINE_integer("workers", 1, "trials run at the same time")
flags.DEFINE_string("metric", None, "metric for the table (default: accuracy, mse or loss)")
flags.DEFINE_bool("collect_only", False, "only rebuild results.csv and the table")
flags.DEFINE_enum("malloc", "default", malloc.CHOICES,
                  "reuse: restart with glibc malloc keeping freed memory; the trials inherit it "
                  "(for long sequences on CPU; attnlab/cli/malloc.py)")
FLAGS = flags.FLAGS
PROG = "sweep"


@common.guard(PROG)
def main(argv):
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments: {argv[1:]}")
  common.quiet_logging()
  print(f"malloc: {malloc.use(FLAGS.malloc, sys.argv)}", flush=True)
  rows, table = sweep.run_sweep(FLAGS.config, FLAGS.workdir, workers=FLAGS.workers,
                                metric=FLAGS.metric, collect_only=FLAGS.collect_only)
  print(table)
  print(f"\nresults: {FLAGS.workdir}/results.csv, table: {FLAGS.workdir}/results.md")
  bad = sweep.failed(rows)
  if bad:
    print(f"sweep: {len(bad)} trial(s) did not finish: {', '.join(bad)} "
          f"(see TRIAL/sweep_trial.json and TRIAL/train.err)", file=sys.stderr)
    return 1
  return 0


def run():
  app.run(main, flags_parser=lambda argv: common.parse_flags(PROG, argv))


if __name__ == "__main__":
  run()
