"""Loop overhead: steps/s of ``train_and_evaluate`` vs the bare jitted step in a Python loop.

  python scripts/bench.py loop [--json FILE] [--quick] [--steps N] [--repeats R]

Both run the same compiled step (data sampled inside it) on a small LSTM and a small Transformer.
The loop runs at the default cadence of experiments/base.py (log every 50 steps, evaluate
and checkpoint every 500). Its rate is measured from outside: N more steps divided by the
difference in wall (and CPU) time between a run of 2N steps and a run of N steps (fresh workdirs,
a warm compilation cache), so start-up, compilation and the final evaluation cancel out and the
N steps hold their share of evaluations and checkpoint saves, as in a long run. Rates are given per wall second and per
CPU second of the process (all threads: XLA's, orbax's, TensorBoard's), the latter being far
less sensitive to other processes on a shared machine. Target: loop >= 0.95 of bare.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import jax

from benchmarks import timing
from attnlab import configs
from attnlab.train import config as config_lib
from attnlab.train import data as data_lib
from attnlab.train import loop, parallel

_DEFAULT = os.path.join(os.path.dirname(__file__), "..", "..", "experiments", "base.py")


def _config(model: str, steps: int, quick: bool):
  config = configs.load_config_file(f"{_DEFAULT}:model={model},task=copy")
  config.model.d_model, config.model.num_layers = (32, 1) if quick else (64, 2)
  config.train_min_length = config.train_max_length = 32
  config.eval_lengths = [32, 64]
  config.batch_size = 32
  config.num_steps = steps
  if quick:  # keep some evaluations and saves inside the short run
    config.eval_every = config.checkpoint_every = steps // 2
  return config


def _clock() -> tuple[float, float]:
  return time.perf_counter(), time.process_time()


def _bare_seconds(config, steps: int) -> tuple[float, float]:
  """(wall, cpu) seconds of ``steps`` bare steps after as many untimed ones."""
  setup = config_lib.build(config)
  devices = parallel.make(config.parallelism, parallel.make_mesh())
  state = devices.init_state(loop.create_fn(config, setup))
  data = data_lib.TrainData.from_config(config, setup.task, setup.buckets)
  train_fn = devices.train_fn(data, loop.update_fn(config, setup),
                              data_lib.dropout_key(config.seed))
  for _ in range(2):  # the first pass is untimed warm-up
    start = _clock()
    for _ in range(steps):
      state, metrics = train_fn(state, config.train_min_length)
    timing.block(metrics)
  end = _clock()
  return end[0] - start[0], end[1] - start[1]


def _run_seconds(config, steps: int) -> tuple[float, float]:
  """(wall, cpu) seconds of one ``train_and_evaluate`` of ``steps`` steps in a fresh workdir."""
  config = config.copy_and_resolve_references()
  config.num_steps = steps
  with tempfile.TemporaryDirectory() as workdir:
    start = _clock()
    loop.train_and_evaluate(config, workdir)
    end = _clock()
  return end[0] - start[0], end[1] - start[1]


def _loop_rates(config) -> tuple[float, float]:
  """Steps per wall second and per CPU second of ``train_and_evaluate`` in steady state."""
  n = config.num_steps
  short, long = _run_seconds(config, n), _run_seconds(config, 2 * n)
  return n / max(long[0] - short[0], 1e-9), n / max(long[1] - short[1], 1e-9)


def main(args: list[str], json_path: str | None) -> list[dict]:
  parser = argparse.ArgumentParser(prog="bench.py loop")
  parser.add_argument("--quick", action="store_true", help="tiny models, 200 steps, 1 repeat")
  parser.add_argument("--steps", type=int, default=None,
                      help="steps per run (default 1000)")
  parser.add_argument("--repeats", type=int, default=None, help="runs per implementation")
  opts = parser.parse_args(args)
  steps = opts.steps or (200 if opts.quick else 1000)
  repeats = opts.repeats or (1 if opts.quick else 3)
  cache = tempfile.mkdtemp(prefix="attnlab_bench_cache_")
  jax.config.update("jax_compilation_cache_dir", cache)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  records = []
  for model in ("lstm", "transformer"):
    config = _config(model, steps, opts.quick)
    _loop_rates(config)  # warms the compilation cache
    rates = {"bare": [], "loop": []}
    for _ in range(repeats):  # interleaved, so machine noise hits both alike
      wall, cpu = _bare_seconds(config, steps)
      rates["bare"].append((steps / wall, steps / cpu))
      rates["loop"].append(_loop_rates(config))
    common = {"model": model, "d_model": config.model.d_model, "batch": config.batch_size,
              "length": config.train_min_length, "steps": steps}
    med = {k: [sorted(r[i] for r in v)[repeats // 2] for i in (0, 1)] for k, v in rates.items()}
    for impl in ("bare", "loop"):
      records.append({**common, "impl": impl, "steps_per_s": med[impl][0],
                      "steps_per_cpu_s": med[impl][1],
                      "ratio": med[impl][0] / med["bare"][0],
                      "cpu_ratio": med[impl][1] / med["bare"][1]})
  print(f"devices: {jax.devices()}  ({time.strftime('%Y-%m-%d %H:%M')})")
  print(timing.format_table(records, ["model", "impl", "d_model", "batch", "length", "steps",
                                      "steps_per_s", "ratio", "steps_per_cpu_s", "cpu_ratio"]))
  timing.write_json(json_path, records)
  return records
