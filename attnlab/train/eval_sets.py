"""Evaluation on the fixed, versioned tfds sets (``config.eval_data_dir``) instead of sampled batches.

With ``eval_data_dir`` empty (the default) a run evaluates on ``eval_batches`` batches sampled on
the device from ``eval_seed``. With it set, the run reads the first ``eval_batches * batch_size``
examples of each evaluation length from the set that ``scripts/build_data.py`` built for the run's
task config with seed ``eval_seed``: the same examples for every model, every run, and every
attnlab version that keeps ``tfds_builder.VERSION``. The loop never builds a set itself (two sweep
trials, or two hosts, would race to write it); a missing or too small set is a ``ValueError``
naming the command that builds it, raised before anything compiles.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from attnlab.tasks import base, registry, tfds_builder
from attnlab.train import parallel


def _build_command(data_dir, task: base.Task, lengths, examples: int, seed: int) -> str:
  fields = " ".join(f"--task_config {k}={v}" for k, v in registry.task_fields(task).items())
  return (f"scripts/build_data.py --task {task.name} --data_dir {data_dir} "
          f"--lengths {','.join(str(n) for n in lengths)} --examples {examples} --seed {seed}"
          + (f" {fields}" if fields else ""))


def load(data_dir: str, task: base.Task, lengths: Sequence[int], *, batch_size: int,
         num_batches: int, seed: int) -> dict[int, dict[str, np.ndarray]]:
  """{length: batch with a leading [num_batches, batch_size] pair of axes} read from the sets."""
  examples = batch_size * num_batches
  out = {}
  for n in lengths:
    try:
      batches = list(tfds_builder.eval_batches(data_dir, task, n, batch_size, seed=seed,
                                               num_batches=num_batches))
    except ValueError as e:
      raise ValueError(f"eval_data_dir={data_dir!r}: {e}. Build it with: "
                       f"{_build_command(data_dir, task, lengths, examples, seed)}") from None
    if len(batches) < num_batches:
      raise ValueError(
          f"eval_data_dir={data_dir!r}: the {task.name} set at length {n} (seed {seed}) holds "
          f"{len(batches) * batch_size} usable examples; eval_batches * batch_size = {examples} are "
          f"needed. Build it with: {_build_command(data_dir, task, lengths, examples, seed)}")
    out[n] = {k: np.stack([b[k] for b in batches]) for k in batches[0]}
  return out


def to_devices(batches: dict[str, np.ndarray], mesh) -> dict[str, jax.Array]:
  """The stacked batches on the mesh, each batch's rows split over the data axis (every process
  holds the full arrays and keeps its devices' rows)."""
  if mesh is None:
    return {k: jax.device_put(v) for k, v in batches.items()}
  sharding = NamedSharding(mesh, P(None, parallel.AXIS))
  return {k: jax.make_array_from_callback(v.shape, sharding, lambda idx, v=v: v[idx])
          for k, v in batches.items()}


@dataclasses.dataclass(frozen=True)
class Evaluation:
  """The run's evaluation: ``self(state, length) -> metrics`` (device scalars)."""
  fn: Any  # jitted: (state, length) with length static, or (state, batches)
  data: dict | None  # {length: batches on the devices}; None: sampled from eval_seed

  def _args(self, n):
    return (n,) if self.data is None else (self.data[n],)

  def __call__(self, state, n):
    return self.fn(state, *self._args(n))

  def compile(self, state, lengths):
    """Compiles every length now (a shape error shows at start, no compile lands mid-run);
    returns a callable like ``self``."""
    compiled = {n: self.fn.lower(state, *self._args(n)).compile() for n in lengths}
    if self.data is None:
      return lambda s, n: compiled[n](s)
    return lambda s, n: compiled[n](s, self.data[n])


def _sizes(config, batch_size: int | None, num_batches: int | None) -> dict[str, int]:
  """batch_size and num_batches, each the config's (batch_size, eval_batches) unless given."""
  return dict(batch_size=batch_size or config.batch_size,
              num_batches=num_batches or config.eval_batches)


def read(config, task: base.Task, lengths: Sequence[int], *, batch_size: int | None = None,
         num_batches: int | None = None) -> dict[int, dict[str, np.ndarray]] | None:
  """The host arrays of the sets ``config.eval_data_dir`` names (None when it is empty)."""
  data_dir = config.get("eval_data_dir", "")
  if not data_dir:
    return None
  return load(data_dir, task, lengths, seed=config.eval_seed,
              **_sizes(config, batch_size, num_batches))


def make(config, task: base.Task, mesh, sets: dict | None, *, batch_size: int | None = None,
         num_batches: int | None = None) -> Evaluation:
  """The run's evaluation: on ``sets`` (from ``read``) or, when None, sampled from eval_seed."""
  if sets is None:
    return Evaluation(parallel.make_eval_fn(task, mesh=mesh, eval_seed=config.eval_seed,
                                            **_sizes(config, batch_size, num_batches)), None)
  return Evaluation(parallel.make_data_eval_fn(mesh=mesh),
                    {n: to_devices(b, mesh) for n, b in sets.items()})
