"""``attnlab-build-data`` / ``scripts/build_data.py``: fixed evaluation sets of a task config
(tfds, array_record); prints their name and sizes.

  scripts/build_data.py --task distant_dependency --data_dir /tmp/attnlab_data \
      --lengths 64,128,256 --examples 1000 --seed 1234 \
      --task_config distance=32 --task_config noise_rate=0.1

Building again with the same arguments reuses the data. Read the sets back with
``attnlab.tasks.tfds_builder.eval_batches``.
"""

from __future__ import annotations

from absl import flags

from attnlab.cli import common
from attnlab.tasks import registry
from attnlab.tasks import tfds_builder

_TASK = flags.DEFINE_string("task", None, f"task name, one of {sorted(registry.TASKS)}",
                            required=True)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "tfds data directory", required=True)
_LENGTHS = flags.DEFINE_list("lengths", ["64", "128", "256", "512"], "input lengths, one split each")
_EXAMPLES = flags.DEFINE_integer("examples", 1000, "examples per split")
_SEED = flags.DEFINE_integer("seed", 1234,
                             "evaluation-set seed (keep it apart from training data seeds)")
_TASK_CONFIG = flags.DEFINE_multi_string("task_config", [],
                                         "task config field as key=value, repeatable")
PROG = "build_data"


@common.guard(PROG)
def main(argv):
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments: {argv[1:]}")
  common.quiet_logging()
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  tfds.disable_progress_bar()
  fields = registry.parse_fields(_TASK.value, common.key_values(_TASK_CONFIG.value,
                                                               "--task_config"))
  lengths = []
  for n in _LENGTHS.value:
    if not n.strip().isdigit() or int(n) < 1:
      raise ValueError(f"--lengths: {n!r} is not a positive integer")
    lengths.append(int(n))
  info = tfds_builder.build(_DATA_DIR.value, _TASK.value, fields, lengths=lengths,
                            examples=_EXAMPLES.value, seed=_SEED.value)
  task = registry.get_task(_TASK.value, **fields)
  print(f"dataset: {info.name}")
  print(f"task: {task.name} {registry.task_fields(task)} seed={_SEED.value}")
  print(f"path: {info.path}")
  for split, size in info.splits.items():
    print(f"  {split}: {size} examples")
  return 0


def run():
  common.run(PROG, main)


if __name__ == "__main__":
  run()
