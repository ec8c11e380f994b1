"""``attnlab-train`` / ``scripts/train.py``: one training run.

  scripts/train.py --config experiments/base.py:model=lstm,task=copy,smoke --workdir /tmp/run

Compiled programs are cached on disk (``attnlab/train/compilation.py``): in
``$ATTNLAB_COMPILATION_CACHE`` if set (``off`` switches the cache off), else ~/.cache/attnlab/jax.
"""

from __future__ import annotations

import logging
import sys

from absl import app
from absl import flags
import jax
from ml_collections import config_flags

from attnlab import configs
from attnlab.cli import common, malloc
from attnlab.train import compilation
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
_MALLOC = flags.DEFINE_enum("malloc", "default", malloc.CHOICES,
                            "reuse: restart with glibc malloc keeping freed memory (no page faults "
                            "per step; for long sequences on CPU; attnlab/cli/malloc.py)")

PROG = "train"
log = logging.getLogger("attnlab.cli.train")


def _flag_value(argv, name: str) -> str | None:
  """The last ``--name=VALUE`` or ``--name VALUE`` in argv."""
  value = None
  for i, arg in enumerate(argv):
    if arg.startswith(f"--{name}="):
      value = arg.split("=", 1)[1]
    elif arg == f"--{name}" and i + 1 < len(argv):
      value = argv[i + 1]
  return value


def check_config_flags(argv) -> None:
  """Loads the config file and checks the override names first, so that a missing file, a bad
  ``:arg`` or a misspelt field is one clear ValueError (config_flags would defer it)."""
  spec = _flag_value(argv, "config")
  if spec is None:
    if "--helpfull" in argv or "--help" in argv or "-h" in argv:
      return
    raise ValueError("--config is required: an experiment config file[:arg], e.g. "
                     "--config experiments/base.py:model=lstm,task=copy")
  if _flag_value(argv, "workdir") is None and not any(a in argv for a in ("--help", "-h")):
    raise ValueError("--workdir is required: the run directory (resumed if it holds a run)")
  overrides = [a[len("--config."):].split("=")[0] for a in argv if a.startswith("--config.")]
  config_lib.check_overrides(configs.load_config_file(spec), overrides)


@common.guard(PROG)
def main(argv):
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments: {argv[1:]}")
  common.quiet_logging()
  if malloc.use(_MALLOC.value, sys.argv) != "default":
    log.info("malloc: %s", malloc.describe())
  config = _CONFIG.value
  config_lib.validate(config)  # before anything else: a bad config is one line, nothing started
  # jax.distributed must start before anything touches a backend (the device count included).
  parallel.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                                  _AUTO_DISTRIBUTED.value)
  config_lib.check_devices(config)
  cache = compilation.enable_cache(compilation.cache_dir())
  log.info("JAX %s, process %d/%d, devices: %s; compilation cache: %s", jax.__version__,
           jax.process_index(), jax.process_count(), jax.devices(), cache or "off")
  try:
    summary = loop.train_and_evaluate(config, _WORKDIR.value, overwrite=_OVERWRITE.value,
                                      allow_mismatch=_ALLOW_MISMATCH.value)
  except loop.NonFiniteLossError as e:
    log.error("%s", e)
    return 1
  log.info("finished: %s", {k: v for k, v in summary.items() if k != "final_eval"})
  return 0


def run():
  app.run(main, flags_parser=lambda argv: common.parse_flags(PROG, argv, check_config_flags))


if __name__ == "__main__":
  run()
