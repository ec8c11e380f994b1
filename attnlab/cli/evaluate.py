"""``attnlab-evaluate`` / ``scripts/evaluate.py``: a saved run, from its workdir alone
(config.json + checkpoints), at any lengths.

  scripts/evaluate.py --workdir runs/distance/lstm-distance32-seed0 [--checkpoint best|latest|STEP]
      [--lengths 33,65,129] [--output eval.json] [--attention_maps 2] [--gradient_lag]
      [--task_config p_ignore=0.98 --task_config ...]

Prints (or writes to --output) JSON: the run, the step, per length its metrics by name and their
mean over the lengths. --attention_maps N writes PNG heat maps per layer and head for N examples;
--gradient_lag writes the gradient norm against distance from the target (PNG, and the numbers in
the JSON). Figures go to --plots_dir (default WORKDIR/eval). Bad input exits 2 with a message.
"""

from __future__ import annotations

import json

from absl import flags

from attnlab.analysis import workdir as workdir_lib
from attnlab.cli import common
from attnlab.train import compilation

flags.DEFINE_string("workdir", None, "training workdir", required=True)
flags.DEFINE_string("checkpoint", "latest", "best, latest or a step number")
flags.DEFINE_list("lengths", None, "evaluation lengths (default: the run's eval_lengths)")
flags.DEFINE_string("output", None, "write the JSON here instead of printing it")
flags.DEFINE_integer("attention_maps", 0, "examples to draw attention heat maps for")
flags.DEFINE_bool("gradient_lag", False, "measure and plot gradient norm against distance")
flags.DEFINE_integer("gradient_lag_length", None, "length for --gradient_lag "
                     "(default: the longest evaluation length)")
flags.DEFINE_string("plots_dir", None, "directory for figures (default: WORKDIR/eval)")
flags.DEFINE_multi_string("task_config", [], "a task field as key=value, repeatable: evaluate on "
                          "another config of the run's task")
FLAGS = flags.FLAGS
PROG = "evaluate"


@common.guard(PROG)
def main(argv):
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments: {argv[1:]}")
  common.quiet_logging()
  compilation.enable_cache()
  task_config = common.key_values(FLAGS.task_config, "--task_config")
  result = workdir_lib.evaluate_workdir(
      FLAGS.workdir, checkpoint=FLAGS.checkpoint, lengths=FLAGS.lengths,
      attention_maps_n=FLAGS.attention_maps, gradient_lag=FLAGS.gradient_lag,
      gradient_lag_length=FLAGS.gradient_lag_length, plots_dir=FLAGS.plots_dir,
      task_config=task_config)
  text = json.dumps(result, indent=1)
  if FLAGS.output:
    with open(FLAGS.output, "w") as f:
      f.write(text + "\n")
    print(f"wrote {FLAGS.output}")
  else:
    print(text)
  return 0


def run():
  common.run(PROG, main)


if __name__ == "__main__":
  run()
