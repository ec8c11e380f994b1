"""``attnlab-train`` / ``scripts/train.py``: one training run.

  scripts/train.py --config experiments/base.py:model=lstm,task=copy,smoke --workdir /tmp/run

Compiled programs are cached on disk (``attnlab/train/compilation.py``): in
``$ATTNLAB_COMPILATION_CACHE`` if set (``off`` switches the cache off), else ~/.cache/attnlab/jax.
"""

from __future__ import annotations

import copy
import logging

from absl import flags
import jax
from ml_collections import config_flags

from attnlab import configs
from attnlab.cli import common
from attnlab.train import compilation
from attnlab.train import config as config_lib
from attnlab.train import loop
from attnlab.train import parallel


class _ConfigFile(flags.ArgumentParser):
  """``--config``'s parser: the file loaded by ``attnlab.configs`` (a missing file, an import that
  fails or a bad ``:arg`` is one ValueError naming the file); keeps the file's own fields."""

  def parse(self, argument: str):
    config = configs.load_config_file(argument)
    self.loaded = copy.deepcopy(config)  # before the --config.FIELD overrides
    return config

  def flag_type(self) -> str:
    return "config file"


# Unknown override names are accepted while absl parses, then refused by name in main()
# (check_overrides names the closest fields), and the config is locked there.
_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "experiment config file[:arg]; --config.FIELD=VALUE overrides a field",
    lock_config=False, accept_new_attributes=True)
flags.FLAGS[_CONFIG.name].parser = _ConfigFile()
_WORKDIR = flags.DEFINE_string("workdir", None, "run directory (resumed if it holds a run)")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "move an existing run in workdir aside")
_ALLOW_MISMATCH = flags.DEFINE_bool("allow_config_mismatch", False,
                                    "continue a run whose config.json differs")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "multi-host: host:port of process 0")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "multi-host: number of processes")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "multi-host: this process's index")
_AUTO_DISTRIBUTED = flags.DEFINE_bool("auto_distributed", False,
                                      "multi-host: let JAX detect SLURM/MPI/TPU-pod peers")

PROG = "train"
log = logging.getLogger("attnlab.cli.train")


def _config():
  """The parsed --config, its overrides checked against the file's own fields, locked."""
  if _CONFIG.value is None:
    raise ValueError("--config is required: an experiment config file[:arg], e.g. "
                     "--config experiments/base.py:model=lstm,task=copy")
  holder = flags.FLAGS[_CONFIG.name]
  config_lib.check_overrides(holder.parser.loaded, list(config_flags.get_override_values(holder)))
  _CONFIG.value.lock()
  return _CONFIG.value


def _start_distributed():
  """Starts multi-host JAX from the flags, or (--auto_distributed) lets JAX detect its SLURM, Open
  MPI, Kubernetes or Cloud TPU cluster (none: ValueError); neither is a single-process run. Call it
  before anything touches a JAX backend (``jax.devices()`` included)."""
  if _COORDINATOR.value:  # JAX's own ValueErrors name a missing or bad process count or id
    jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                               num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value)
  elif _NUM_PROCESSES.value is not None or _PROCESS_ID.value is not None:  # else one process
    raise ValueError("--num_processes and --process_id need --coordinator_address (HOST:PORT of "
                     "process 0); or use --auto_distributed on a cluster")
  elif _AUTO_DISTRIBUTED.value:
    try:
      jax.distributed.initialize()
    except ValueError as e:  # JAX asks for a coordinator_address when it finds no cluster
      raise ValueError(f"--auto_distributed: JAX found no SLURM, Open MPI, Kubernetes or Cloud "
                       f"TPU cluster to join ({e}); give --coordinator_address, --num_processes "
                       f"and --process_id instead") from e
  else:
    return
  log.info("jax.distributed: process %d of %d, %d local / %d global devices", jax.process_index(),
           jax.process_count(), jax.local_device_count(), jax.device_count())


@common.guard(PROG)
def main(argv):
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments: {argv[1:]}")
  common.quiet_logging()
  config = _config()
  if _WORKDIR.value is None:
    raise ValueError("--workdir is required: the run directory (resumed if it holds a run)")
  config_lib.validate(config)  # before anything else: a bad config is one line, nothing started
  # jax.distributed must start before anything touches a backend (the device count included).
  _start_distributed()
  parallel.check_batch(config.batch_size, config.optimizer.grad_accum_steps)
  cache = compilation.enable_cache()
  log.info("JAX %s, process %d/%d, devices: %s; compilation cache: %s", jax.__version__,
           jax.process_index(), jax.process_count(), jax.devices(), cache or "off")
  try:
    summary = loop.train_and_evaluate(config, _WORKDIR.value, overwrite=_OVERWRITE.value,
                                      allow_mismatch=_ALLOW_MISMATCH.value)
  except loop.NonFiniteLossError as e:
    log.error("%s", e)
    return 1
  log.info("finished: %s", {k: v for k, v in summary.items()
                            if k != "final_eval" and "@" not in k})  # per length: summary.json
  return 0


def run():
  common.run(PROG, main)


if __name__ == "__main__":
  run()
