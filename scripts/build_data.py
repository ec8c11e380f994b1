#!/usr/bin/env python3
"""Builds fixed evaluation sets of a task config (tfds, array_record) and prints their name and sizes.

  python scripts/build_data.py --task distant_dependency --data_dir /tmp/attnlab_data \
      --lengths 64,128,256 --examples 1000 --seed 1234 \
      --task_config distance=32 --task_config noise_rate=0.1

Building again with the same arguments reuses the data. Read the sets back with
``attnlab.tasks.tfds_builder.eval_batches``.
"""

from absl import app
from absl import flags

from attnlab.tasks import registry
from attnlab.tasks import tfds_builder

_TASK = flags.DEFINE_string("task", None, f"task name, one of {sorted(registry.TASKS)}", required=True)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "tfds data directory", required=True)
_LENGTHS = flags.DEFINE_list("lengths", ["64", "128", "256", "512"], "input lengths, one split each")
_EXAMPLES = flags.DEFINE_integer("examples", 1000, "examples per split")
_SEED = flags.DEFINE_integer("seed", 1234,
                             "evaluation-set seed (keep it apart from training data seeds)")
_TASK_CONFIG = flags.DEFINE_multi_string("task_config", [], "task config field as key=value, repeatable")


def main(argv):
  del argv
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  tfds.disable_progress_bar()
  raw = {}
  for item in _TASK_CONFIG.value:
    key, sep, value = item.partition("=")
    if not sep:
      raise app.UsageError(f"--task_config {item!r}: expected key=value")
    raw[key.strip()] = value.strip()
  fields = registry.parse_fields(_TASK.value, raw)
  info = tfds_builder.build(_DATA_DIR.value, _TASK.value, fields,
                            lengths=[int(n) for n in _LENGTHS.value], examples=_EXAMPLES.value,
                            seed=_SEED.value)
  task = registry.get_task(_TASK.value, **fields)
  print(f"dataset: {info.name}")
  print(f"task: {task.name} {registry.task_fields(task)} seed={_SEED.value}")
  print(f"path: {info.path}")
  for split, size in info.splits.items():
    print(f"  {split}: {size} examples")


if __name__ == "__main__":
  app.run(main)
