"""``attnlab-report`` / ``scripts/report.py``: the results report.

  scripts/report.py                  # docs/results.md (and its figures) from docs/results/
  scripts/report.py --check          # exit 1 if docs/results.md differs from a fresh build
  scripts/report.py --collect runs/distance --name distance \
      --command "scripts/sweep.py --config experiments/distance.py:report --workdir runs/distance"
      [--gradient_lag TRIAL,TRIAL] [--attention TRIAL]

--collect copies a finished sweep's results.csv and protocol (and the analyses asked for) into
docs/results/NAME/; the report reads nothing else.
"""

from __future__ import annotations

import os
import sys

from absl import flags

from attnlab.cli import common
from attnlab.report import build, collect

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
flags.DEFINE_string("results", os.path.join(ROOT, "docs", "results"), "committed results")
flags.DEFINE_string("out", os.path.join(ROOT, "docs", "results.md"), "the report")
flags.DEFINE_bool("check", False, "compare the committed report with a fresh build")
flags.DEFINE_string("collect", None, "a finished sweep directory to copy into --results/--name")
flags.DEFINE_string("name", None, "the experiment's folder under --results (with --collect)")
flags.DEFINE_string("command", None, "the exact sweep command (with --collect)")
flags.DEFINE_list("gradient_lag", [], "with --collect: trials to measure the gradient lag of")
flags.DEFINE_string("attention", None, "with --collect: a Transformer trial's attention on the key")
FLAGS = flags.FLAGS
PROG = "report"


@common.guard(PROG)
def main(argv):
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments: {argv[1:]}")
  common.quiet_logging()
  if FLAGS.collect:
    if not FLAGS.name or not FLAGS.command:
      raise ValueError("--collect needs --name (the folder) and --command (the sweep command)")
    out_dir = os.path.join(FLAGS.results, FLAGS.name)
    paths = collect.collect_sweep(FLAGS.collect, out_dir, FLAGS.command)
    if FLAGS.gradient_lag:
      paths.append(collect.gradient_lag(FLAGS.collect, FLAGS.gradient_lag, out_dir))
    if FLAGS.attention:
      paths.append(collect.attention_on_key(FLAGS.collect, FLAGS.attention, out_dir))
    print("\n".join(paths))
    return 0
  if FLAGS.check:
    diff = build.check(FLAGS.results, FLAGS.out)
    if diff:
      print("\n".join(diff[:200]), file=sys.stderr)
      print(f"report: {FLAGS.out} differs from a fresh build of {FLAGS.results} "
            "(run scripts/report.py)", file=sys.stderr)
      return 1
    print(f"{FLAGS.out} is up to date")
    return 0
  build.build(FLAGS.results, FLAGS.out)
  print(FLAGS.out)
  return 0


def run():
  common.run(PROG, main)


if __name__ == "__main__":
  run()
