"""Shared timing and reporting helpers for the benchmark suites."""

from __future__ import annotations

import json
import statistics
import time
from typing import Callable, Iterable, Sequence

import jax


def block(tree):
  """Waits for every array in a pytree (JAX arrays; anything else passes through)."""
  return jax.tree_util.tree_map(
      lambda x: x.block_until_ready() if hasattr(x, "block_until_ready") else x, tree)


def device_peak_mb() -> float | None:
  """The most memory the first device's allocator has held, in MB; None where JAX keeps no such
  count (the CPU)."""
  try:
    stats = jax.local_devices()[0].memory_stats() or {}
  except Exception:  # noqa: BLE001 (backends without memory statistics raise or return None)
    return None
  peak = stats.get("peak_bytes_in_use")
  return None if peak is None else peak / 2**20


def median_seconds(fn: Callable[[], object], *, repeats: int = 5, warmup: int = 1,
                   sync: Callable[[object], object] = block) -> tuple[float, list[float]]:
  """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` untimed calls."""
  for _ in range(warmup):
    sync(fn())
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    sync(fn())
    times.append(time.perf_counter() - t0)
  return statistics.median(times), times


def time_interleaved(runs: dict, repeats: int, warmup: int) -> dict:
  """Median (wall, process CPU) seconds of each callable, called once per round (in a rotating
  order) so that load and the previous step's after-effects hit all alike."""
  for run in runs.values():
    for _ in range(warmup):
      run()
  times = {key: ([], []) for key in runs}
  keys = list(runs)
  for r in range(repeats):
    # The order rotates every round: a step right after a JAX step ran up to ~18% slower (PyTorch
    # after JAX: 0.174 vs 0.147 s after itself; JAX's idle worker threads still spin), so a fixed
    # order would favour whichever implementation never follows another.
    for key in keys[r % len(keys):] + keys[:r % len(keys)]:
      t0, c0 = time.perf_counter(), time.process_time()
      runs[key]()
      times[key][0].append(time.perf_counter() - t0)
      times[key][1].append(time.process_time() - c0)
  return {key: (statistics.median(w), statistics.median(c)) for key, (w, c) in times.items()}


def format_table(records: Sequence[dict], columns: Sequence[str]) -> str:
  """A plain aligned text table of the given columns (missing values shown as '-')."""
  def cell(r, c):
    v = r.get(c, "-")
    if isinstance(v, float):
      return f"{v:.4g}"
    return str(v)
  rows = [list(columns)] + [[cell(r, c) for c in columns] for r in records]
  widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
  lines = ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in rows]
  lines.insert(1, "  ".join("-" * w for w in widths))
  return "\n".join(lines)


def write_json(path: str | None, records: Iterable[dict]) -> None:
  if path:
    with open(path, "w") as f:
      json.dump(list(records), f, indent=1)
