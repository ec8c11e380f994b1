"""Loop overhead: steps/s of ``train_and_evaluate`` vs the bare jitted step in a Python loop.

  python scripts/bench.py loop [--json FILE] [--quick] [--steps N] [--repeats R]

Both run the same compiled step (data sampled inside it) on a small LSTM and a small Transformer.
The loop runs at the default cadence of experiments/default.py (log every 50 steps, evaluate
and checkpoint every 500) and its steps/s is taken from its own logged windows after the first
(which holds the compiles); a persistent compilation cache, warmed by a first run, keeps the
evaluation compile out of the timed windows as it would be in a long run. Target: loop >= 0.95
of bare.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import jax

from attnlab.bench import timing
from attnlab.train import config as config_lib
from attnlab.train import loop
from attnlab.train import models, optim, parallel
from attnlab.train import state as state_lib

_DEFAULT = os.path.join(os.path.dirname(__file__), "..", "..", "experiments", "default.py")


def _config(model: str, steps: int, quick: bool):
  config = config_lib.load_config_file(f"{_DEFAULT}:model={model},task=copy")
  config.model.d_model, config.model.num_layers = (32, 1) if quick else (64, 2)
  config.train_min_length = config.train_max_length = 32
  config.eval_lengths = [32, 64]
  config.batch_size = 32
  config.num_steps = steps
  if quick:  # keep some evaluations and saves inside the short run
    config.eval_every = config.checkpoint_every = steps // 2
  return config


def _bare_steps_per_s(config, steps: int, repeats: int) -> float:
  setup = config_lib.build(config)
  tx, schedule = optim.make_optimizer(config.optimizer, config.num_steps)
  mesh = parallel.make_mesh()
  create = lambda: state_lib.create(setup.model, tx, schedule, setup.task.output_kind,  # noqa: E731
                                    jax.random.PRNGKey(config.seed),
                                    models.dummy_inputs(setup.task))
  state = parallel.init_state(create, config.parallelism, mesh)
  train_fn = parallel.make_train_fn(setup.task, parallelism=config.parallelism, mesh=mesh,
                                    batch_size=config.batch_size, data_seed=config.data_seed,
                                    seed=config.seed, accum_steps=1)
  holder = [state]

  def run():
    s = holder[0]
    for _ in range(steps):
      s, metrics = train_fn(s, config.train_min_length)
    holder[0] = s
    return metrics
  seconds, _ = timing.median_seconds(run, repeats=repeats, warmup=1)
  return steps / seconds


def _loop_steps_per_s(config) -> float:
  with tempfile.TemporaryDirectory() as workdir:
    loop.train_and_evaluate(config, workdir)
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      records = [json.loads(line) for line in f][1:]  # the first window holds the compiles
  window = config.log_every
  seconds = sum(window / r["steps_per_s"] for r in records)
  return window * len(records) / seconds


def main(args: list[str], json_path: str | None) -> list[dict]:
  parser = argparse.ArgumentParser(prog="bench.py loop")
  parser.add_argument("--quick", action="store_true", help="tiny models, 200 steps, 1 repeat")
  parser.add_argument("--steps", type=int, default=None, help="steps per run (default 1000)")
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
    _loop_steps_per_s(config)  # warms the compilation cache
    loop_rates, bare_rates = [], []
    for _ in range(repeats):  # interleaved, so machine noise hits both alike
      bare_rates.append(_bare_steps_per_s(config, steps, 1))
      loop_rates.append(_loop_steps_per_s(config))
    bare, looped = sorted(bare_rates)[repeats // 2], sorted(loop_rates)[repeats // 2]
    common = {"model": model, "d_model": config.model.d_model, "batch": config.batch_size,
              "length": config.train_min_length, "steps": steps}
    records.append({**common, "impl": "bare", "steps_per_s": bare, "ratio": 1.0})
    records.append({**common, "impl": "loop", "steps_per_s": looped, "ratio": looped / bare})
  print(f"devices: {jax.devices()}  ({time.strftime('%Y-%m-%d %H:%M')})")
  print(timing.format_table(records, ["model", "impl", "d_model", "batch", "length", "steps",
                                      "steps_per_s", "ratio"]))
  timing.write_json(json_path, records)
  return records
