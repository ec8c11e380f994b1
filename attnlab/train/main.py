"""``attnlab-train`` / ``scripts/train.py``: parse flags, log the setup, call train_and_evaluate.

  scripts/train.py --config experiments/base.py:model=lstm,task=copy,smoke --workdir /tmp/run
"""

from __future__ import annotations

import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from attnlab import configs, cpu_malloc
from attnlab.train import config as config_lib
from attnlab.train import loop
from attnlab.train import parallel

_CONFIG = config_flags.DEFINE_config_file("config", None, "experiment config file[:arg]",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "run directory (resumed if it holds a run)")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "move an existing run in workdir aside")
_ALLOW_MISMATCH = flags.DEFINE_bool("allow_config_mismatch", False,
                                    "continue a run whose config.json differs")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "multi-host: host:port of process 0")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "multi-host: number of processes")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "multi-host: this process's index")
_AUTO_DISTRIBUTED = flags.DEFINE_bool("auto_distributed", False,
                                      "multi-host: let JAX detect SLURM/MPI/TPU-pod peers")
_MALLOC = flags.DEFINE_enum("malloc", "default", cpu_malloc.CHOICES,
                            "reuse: restart with glibc malloc keeping freed memory (no page faults "
                            "per step; for long sequences on CPU; attnlab/cpu_malloc.py)")
flags.mark_flags_as_required(["config", "workdir"])


def _parse_flags(argv):
  """absl parsing, but an override naming no config field gives the closest valid names."""
  try:
    return flags.FLAGS(argv)
  except (AttributeError, KeyError, flags.Error) as e:
    overrides = [a[len("--config."):].split("=")[0] for a in argv if a.startswith("--config.")]
    files = [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]
    if files and overrides:
      try:
        config_lib.check_overrides(configs.load_config_file(files[-1]), overrides)
      except ValueError as bad:
        sys.exit(f"FATAL config error: {bad}")
    sys.exit(f"FATAL flags error: {e}")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.info("malloc: %s", cpu_malloc.use(_MALLOC.value, sys.argv))
  parallel.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                                  _AUTO_DISTRIBUTED.value)
  logging.info("JAX %s, process %d/%d, devices: %s", jax.__version__, jax.process_index(),
               jax.process_count(), jax.devices())
  logging.info("config:\n%s", _CONFIG.value)
  try:
    summary = loop.train_and_evaluate(_CONFIG.value, _WORKDIR.value, overwrite=_OVERWRITE.value,
                                      allow_mismatch=_ALLOW_MISMATCH.value)
  except loop.NonFiniteLossError as e:
    logging.error("%s", e)
    sys.exit(1)
  logging.info("finished: %s", {k: v for k, v in summary.items() if k != "final_eval"})


def run():
  app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
  run()
