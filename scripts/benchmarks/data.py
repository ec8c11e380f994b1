"""Examples/s of on-device (jitted) sampling per task: ``scripts/bench.py data [--json FILE]``.

Default batch 64, length 512 with each task's default config. A task whose config cannot take the
length runs at its ``min_length`` instead and says so in the ``note`` column. Each timed call samples
``--calls`` batches with step keys ``fold_in(rng, step)`` (as the training loop does) and waits for
the last; the table shows the median over ``--repeats`` such calls and the compile time.

A second table times, side by side, the two ways of drawing ``n`` distinct random positions per row
that selective copy and MQAR need: argsort of random keys (the usual way) against the
selection-sampling scan in ``common.choose_mask`` (what the tasks use), with their ratio.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from benchmarks import timing
from attnlab.tasks import common
from attnlab.tasks import registry


def _bench_task(name: str, batch_size: int, length: int, calls: int, repeats: int) -> dict:
  task = registry.get_task(name)
  note = ""
  if task.min_length > length:
    note = f"length {length} < min_length {task.min_length}; ran at {task.min_length}"
    length = task.min_length
  if name == "modular_arithmetic" and length % 2 == 0:
    note = f"expression of {length - 1} tokens after one pad (odd lengths only)"

  @jax.jit
  def sample_step(rng, step):
    return task.sample(jax.random.fold_in(rng, step), batch_size, length)

  rng = jax.random.key(0)
  t0 = time.perf_counter()
  timing.block(sample_step(rng, jnp.int32(0)))
  compile_s = time.perf_counter() - t0

  def run():
    out = None
    for i in range(calls):
      out = sample_step(rng, jnp.int32(i + 1))
    return out

  median, _ = timing.median_seconds(run, repeats=repeats, warmup=1)
  per_batch = median / calls
  return {"task": name, "batch": batch_size, "length": length,
          "us_per_batch": per_batch * 1e6, "examples_per_s": batch_size / per_batch,
          "tokens_per_s": batch_size * length / per_batch, "compile_s": compile_s, "note": note}


def _bench_selection(batch_size: int, span: int, count: int, repeats: int) -> list[dict]:
  """Places ``count`` data tokens at random distinct positions of each row, two ways."""
  data_BN = jnp.arange(batch_size * count, dtype=jnp.int32).reshape(batch_size, count) + 1
  rows_BN = jnp.arange(batch_size)[:, None] + jnp.zeros_like(data_BN)

  def by_argsort(rng):  # the usual way (and this package's first version): sort, then scatter
    keys_BS = jax.random.uniform(rng, (batch_size, span))
    pos_BN = jnp.sort(jnp.argsort(keys_BS, axis=-1)[:, :count], axis=-1)
    return jnp.zeros((batch_size, span), jnp.int32).at[rows_BN, pos_BN].set(data_BN)

  def by_scan(rng):  # what selective copy and MQAR do now
    return common.place_in_order(common.choose_mask(rng, batch_size, span, count), data_BN, 0)

  records = []
  for name, fn in (("argsort+scatter", by_argsort), ("selection_scan", by_scan)):
    jitted = jax.jit(fn)
    median, _ = timing.median_seconds(lambda: jitted(jax.random.key(1)), repeats=repeats * 4)
    records.append({"method": name, "batch": batch_size, "span": span, "count": count,
                    "us": median * 1e6})
  for r in records:
    r["ratio_vs_argsort"] = r["us"] / records[0]["us"]
  return records


def main(args: list[str], json_path: str | None) -> list[dict]:
  parser = argparse.ArgumentParser(prog="bench.py data", description=__doc__)
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--length", type=int, default=512)
  parser.add_argument("--calls", type=int, default=20, help="batches per timed call")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--tasks", default=",".join(registry.TASKS), help="comma-separated task names")
  parser.add_argument("--quick", action="store_true", help="few repeats, length 128, for development")
  opts = parser.parse_args(args)
  if opts.quick:
    opts.length, opts.calls, opts.repeats = min(opts.length, 128), 5, 3
  records = [_bench_task(name, opts.batch_size, opts.length, opts.calls, opts.repeats)
             for name in opts.tasks.split(",")]
  print(f"on-device sampling, {jax.devices()[0].platform}, batch {opts.batch_size}, "
        f"median of {opts.repeats} x {opts.calls} batches")
  print(timing.format_table(records, ["task", "batch", "length", "us_per_batch", "examples_per_s",
                                      "tokens_per_s", "compile_s", "note"]))
  selection = _bench_selection(opts.batch_size, opts.length - 17, 16, opts.repeats)
  print("\ncount tokens at random distinct positions per row (selective copy / MQAR), median us")
  print(timing.format_table(selection, ["method", "batch", "span", "count", "us", "ratio_vs_argsort"]))
  records = records + selection
  timing.write_json(json_path, records)
  return records
