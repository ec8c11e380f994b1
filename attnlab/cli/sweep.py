"""``attnlab-sweep`` / ``scripts/sweep.py``: an experiment file's grid as training runs; resumable.

  scripts/sweep.py --config experiments/distance.py[:ARG] --workdir runs/distance [--workers 2]
  scripts/sweep.py ... --executor slurm --slurm_partition gpu --slurm_gpus_per_trial 1
  scripts/sweep.py ... --executor ray [--ray_address HEAD:6379]
  scripts/sweep.py --workdir runs/distance --status
  scripts/sweep.py ... --workdir runs/distance2 --resume_from docs/results/distance/results.csv

Writes WORKDIR/<trial>/ (each an ordinary training workdir), WORKDIR/results.csv (one row per trial)
and WORKDIR/results.md (mean ± std over seeds and the best seed), and prints the table. Running the
same command again, with any executor, skips finished trials and resumes interrupted ones. The
table is rewritten as each trial ends. ``--resume_from FILE`` (the results.csv of an earlier,
partial run of the same sweep, whose workdir may be gone) skips the trials FILE has finished, runs
the others, and writes the merged table. On SLURM or Ray the workdir must be on a filesystem every
node shares (docs/sweeps.md). ``--status`` prints each trial's state and the table so far, and runs
nothing. Exits 1 if a trial failed, 2 on
bad input.
"""

from __future__ import annotations

import sys

from absl import flags

from attnlab.cli import common
from attnlab.sweeps import sweep, trial_state

flags.DEFINE_string("config", None, "experiment file, optionally with :ARG (required unless --status)")
flags.DEFINE_string("workdir", None, "sweep directory (one subdirectory per trial)", required=True)
flags.DEFINE_enum("executor", "local", sweep.EXECUTORS,
                  "local: subprocesses here; slurm: submitit jobs (pip install -e .[slurm]); "
                  "ray: Ray tasks (pip install -e .[ray])")
flags.DEFINE_bool("status", False, "print each trial's state and the table so far; run nothing")
flags.DEFINE_integer("workers", 1, "local executor: trials run at the same time")
flags.DEFINE_string("metric", None, "metric for the table (default: accuracy, mse or loss)")
flags.DEFINE_bool("collect_only", False, "only rebuild results.csv and the table")
flags.DEFINE_string("resume_from", None, "results.csv of an earlier run of this sweep: its "
                    "finished trials are recorded in the workdir (recorded.csv) and not run again")
flags.DEFINE_bool("preflight", True, "build each distinct model/task of the grid first and stop on "
                  "the first that does not build (--nopreflight: such a trial fails on its own)")

flags.DEFINE_string("slurm_partition", None, "slurm: partition (default: the cluster's)")
flags.DEFINE_integer("slurm_time", 240, "slurm: time limit of one job, minutes (a longer trial is "
                     "requeued and resumes from its checkpoint)")
flags.DEFINE_integer("slurm_gpus_per_trial", 0, "slurm: GPUs per trial")
flags.DEFINE_integer("slurm_cpus_per_trial", 4, "slurm: CPUs per trial")
flags.DEFINE_float("slurm_mem_gb", None, "slurm: memory per trial, GB (default: the cluster's)")
flags.DEFINE_integer("slurm_array_parallelism", 256, "slurm: trials of the job array run at once")
flags.DEFINE_multi_string("slurm_extra", [], "slurm: another #SBATCH option, KEY=VALUE "
                          "(e.g. constraint=volta, account=lab) or KEY alone; repeatable")
flags.DEFINE_integer("slurm_max_timeouts", 3, "slurm: time-limit requeues per trial")
flags.DEFINE_integer("slurm_signal_delay_s", 120, "slurm: seconds before the time limit at which "
                     "a trial is stopped at a checkpoint and requeued")
flags.DEFINE_enum("slurm_cluster", "slurm", ("slurm", "local"),
                  "local: submit through submitit's local executor on this machine (no SLURM)")

flags.DEFINE_string("ray_address", None, "ray: a running cluster, HOST:PORT, ray://HOST:PORT or "
                    "auto (default: start a local one)")
flags.DEFINE_float("ray_cpus_per_trial", 1.0, "ray: CPUs per trial (the task's num_cpus)")
flags.DEFINE_float("ray_gpus_per_trial", 0.0, "ray: GPUs per trial (the task's num_gpus)")
flags.DEFINE_integer("ray_max_retries", 2, "ray: retries of a trial whose worker died or whose "
                     "run was interrupted (a bad config is not retried)")
flags.DEFINE_integer("ray_num_cpus", None, "ray: CPUs of the local cluster (default: all)")
flags.DEFINE_float("ray_connect_timeout_s", 10.0, "ray: how long --ray_address may take to answer")
FLAGS = flags.FLAGS
PROG = "sweep"


def _given(prefix: str) -> list[str]:
  return [f"--{name}" for name in FLAGS if name.startswith(prefix) and FLAGS[name].present]


def _options():
  """The executor's options from its flags; flags of another executor are an error."""
  for executor, prefix in (("slurm", "slurm_"), ("ray", "ray_")):
    if FLAGS.executor != executor and _given(prefix):
      raise ValueError(f"{', '.join(_given(prefix))} need --executor {executor} "
                       f"(got --executor {FLAGS.executor})")
  if FLAGS.executor != "local" and FLAGS["workers"].present:
    raise ValueError(f"--workers is the local executor's; on {FLAGS.executor} the trials' "
                     f"resources decide how many run at once")
  if FLAGS.executor == "slurm":
    from attnlab.sweeps import slurm_executor  # pylint: disable=import-outside-toplevel
    return dict(slurm=slurm_executor.SlurmOptions(
        partition=FLAGS.slurm_partition, time_min=FLAGS.slurm_time,
        gpus_per_trial=FLAGS.slurm_gpus_per_trial, cpus_per_trial=FLAGS.slurm_cpus_per_trial,
        mem_gb=FLAGS.slurm_mem_gb, array_parallelism=FLAGS.slurm_array_parallelism,
        extra=slurm_executor.parse_extra(FLAGS.slurm_extra),
        max_timeouts=FLAGS.slurm_max_timeouts, signal_delay_s=FLAGS.slurm_signal_delay_s,
        cluster=FLAGS.slurm_cluster))
  if FLAGS.executor == "ray":
    from attnlab.sweeps import ray_executor  # pylint: disable=import-outside-toplevel
    return dict(ray=ray_executor.RayOptions(
        address=FLAGS.ray_address, cpus_per_trial=FLAGS.ray_cpus_per_trial,
        gpus_per_trial=FLAGS.ray_gpus_per_trial, max_retries=FLAGS.ray_max_retries,
        num_cpus=FLAGS.ray_num_cpus, connect_timeout_s=FLAGS.ray_connect_timeout_s))
  return {}


def _status() -> int:
  states, table = sweep.status(FLAGS.workdir, FLAGS.config, FLAGS.metric)
  print("\n".join(trial_state.status_lines(states)))
  print(f"\n{table}")
  return 0


@common.guard(PROG)
def main(argv):
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments: {argv[1:]}")
  common.quiet_logging()
  if FLAGS.status:
    return _status()
  if FLAGS.config is None:
    raise ValueError("--config is required: an experiment file[:ARG] with a get_sweep grid "
                     "(or --status to see a sweep's state)")
  options = _options()
  sweep.check_executor(FLAGS.executor, **options)
  try:
    rows, table = sweep.run_sweep(FLAGS.config, FLAGS.workdir, executor=FLAGS.executor,
                                  workers=FLAGS.workers, metric=FLAGS.metric,
                                  collect_only=FLAGS.collect_only, preflight=FLAGS.preflight,
                                  resume_from=FLAGS.resume_from, **options)
  except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM: the running trials saved and stopped
    print(f"sweep: interrupted ({e or 'Ctrl-C'}); the running trials saved a checkpoint and "
          "stopped: the same command resumes the sweep", file=sys.stderr)
    return 130
  print(table)
  print(f"\nresults: {FLAGS.workdir}/results.csv, table: {FLAGS.workdir}/results.md")
  bad = sweep.failed(rows)
  if bad:
    print(f"sweep: {len(bad)} trial(s) did not finish: {', '.join(bad)} "
          f"(see TRIAL/sweep_trial.json and TRIAL/train.err, or --status)", file=sys.stderr)
    return 1
  return 0


def run():
  common.run(PROG, main)


if __name__ == "__main__":
  run()
