"""Checkpoint save/restore cost: ``scripts/bench.py checkpoint [--sizes 10M,100M,1B] [--quick]``.

For float32 states of each size (random values, so zstd cannot shrink them; several arrays like a
model): how long ``Checkpointer.save`` blocks the caller (the training step) vs the whole
asynchronous save until ``wait()``, and the restore time and throughput. Rows (impl): the default
(raw arrays + crc32 sidecar), without the sidecar (``verify=False``), and with orbax's zstd
(``compress=True``). Files go to a temporary folder under ``--dir`` (default: the system
temp dir, same disk as /work here). Restores read files just written, so they come from the page
cache: warm-cache figures. Peak memory is about 3x the state (state, orbax's host copy, restored).
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import tempfile
import time

import jax
import numpy as np

from benchmarks import timing
from attnlab.train import checkpoint as ckpt

_UNITS = {"K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9}
_MAX_ARRAY = 25 * 10**6  # parameters per array (100 MB), so large states are many arrays


def parse_size(text: str) -> int:
  """"10M" -> 10_000_000, "1B" -> 10**9, "123" -> 123."""
  text = text.strip().upper()
  try:
    if text[-1] in _UNITS:
      return int(float(text[:-1]) * _UNITS[text[-1]])
    return int(text)
  except (ValueError, IndexError):
    raise ValueError(f"--sizes entry {text!r}: expected a count like 10M, 100M, 1B") from None


def make_state(num_params: int, seed: int = 0) -> dict:
  """{"params": {"w0": ..., "w1": ...}} of float32 random normals totalling ``num_params``."""
  rng = np.random.default_rng(seed)
  n_arrays = max(4, math.ceil(num_params / _MAX_ARRAY))
  sizes = [num_params // n_arrays + (i < num_params % n_arrays) for i in range(n_arrays)]
  params = {f"w{i}": jax.device_put(rng.standard_normal(n, dtype=np.float32))
            for i, n in enumerate(sizes)}
  return {"params": params, "step": jax.device_put(np.int32(0))}


# impl -> Checkpointer keyword arguments.
VARIANTS = {"raw+crc32": {}, "raw": {"verify": False}, "zstd+crc32": {"compress": True}}


def bench_one(num_params: int, *, impl: str, repeats: int, parent: str | None) -> dict:
  directory = tempfile.mkdtemp(prefix="attnlab_ckpt_bench_", dir=parent)
  try:
    state = make_state(num_params)
    abstract = jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)
    nbytes = sum(x.nbytes for x in jax.tree_util.tree_leaves(state))
    blocked, total, restore = [], [], []
    with ckpt.Checkpointer(directory, keep=repeats + 1, **VARIANTS[impl]) as c:
      c.save(0, make_state(1000))  # warm-up: orbax's handlers and threads
      c.wait()
      for step in range(1, repeats + 1):
        t0 = time.perf_counter()
        c.save(step, state)
        blocked.append(time.perf_counter() - t0)
        c.wait()
        total.append(time.perf_counter() - t0)
      del state  # restore into free memory, as a fresh process would
      for step in range(1, repeats + 1):
        t0 = time.perf_counter()
        timing.block(c.restore(step, abstract))
        restore.append(time.perf_counter() - t0)
  finally:
    shutil.rmtree(directory, ignore_errors=True)
  mb = nbytes / 2**20
  save_s, blocked_s, restore_s = (statistics.median(v) for v in (total, blocked, restore))
  return {"size": _label(num_params), "params": num_params, "MB": mb,
          "impl": impl, "save_blocked_s": blocked_s,
          "save_total_s": save_s, "blocked_pct": 100 * blocked_s / save_s,
          "save_MB_s": mb / save_s, "restore_s": restore_s, "restore_MB_s": mb / restore_s}


def _label(n: int) -> str:
  for unit, scale in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
    if n >= scale and n % scale == 0:
      return f"{n // scale}{unit}"
  return str(n)


COLUMNS = ("size", "MB", "impl", "save_blocked_s", "save_total_s", "blocked_pct", "save_MB_s",
           "restore_s", "restore_MB_s")


def main(args: list[str], json_path: str | None) -> list[dict]:
  parser = argparse.ArgumentParser(prog="bench.py checkpoint")
  parser.add_argument("--sizes", default="10M,100M,1B", help="comma-separated parameter counts")
  parser.add_argument("--repeats", type=int, default=3, help="saves and restores per size")
  parser.add_argument("--quick", action="store_true", help="10M only, 2 repeats")
  parser.add_argument("--dir", default=None, help="parent folder for the checkpoints")
  parser.add_argument("--impls", default=",".join(VARIANTS), help=f"of {tuple(VARIANTS)}")
  opts = parser.parse_args(args)
  sizes = [parse_size(s) for s in opts.sizes.split(",") if s.strip()]
  for impl in opts.impls.split(","):
    if impl not in VARIANTS:
      raise ValueError(f"--impls entry {impl!r}; allowed: {tuple(VARIANTS)}")
  repeats = opts.repeats
  if opts.quick:
    sizes, repeats = [10**7], 2
  records = []
  for n in sizes:
    for impl in opts.impls.split(","):
      records.append(bench_one(n, impl=impl, repeats=repeats, parent=opts.dir))
      print(timing.format_table(records[-1:], COLUMNS).splitlines()[-1], flush=True)
  print()
  print(f"checkpoint save/restore, median of {repeats} (blocked: time save() holds the training "
        "step; target blocked_pct < 5)")
  print(timing.format_table(records, COLUMNS))
  timing.write_json(json_path, records)
  return records
