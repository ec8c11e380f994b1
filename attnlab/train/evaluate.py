"""Evaluation of a training state at many lengths: the loop's validation and test, a saved run's.

Each length is scored on ``num_batches`` fixed batches, the same for every model: sampled on the
device from a seed ("test": ``eval_seed``, "val": ``val_seed``), or for "test" read from the tfds
sets under ``eval_data_dir`` that ``scripts/build_data.py`` built. With length buckets one compiled
program serves every length of a bucket: the models compute on a padded batch exactly what they
compute on the unpadded one.
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from attnlab.tasks import base, lengths as lengths_lib, registry, tfds_builder
from attnlab.train import data as data_lib
from attnlab.train import parallel
from attnlab.train import step as step_lib


def _eval_fn(task: base.Task, *, batch_size: int, num_batches: int, mesh: Mesh | None,
             sampled: bool):
  """Jitted metrics averaged over fixed batches: ``fn(state, seed, length, padded_length)`` on
  batches sampled from ``seed`` (traced: validation and test share a program), or
  ``fn(state, batches)`` on host batches stacked on a leading axis."""
  loss_fn = step_lib.task_loss(task.output_kind)

  def mean(state, batch_of, xs):
    metrics = jax.lax.map(lambda x: step_lib.eval_step(state, batch_of(x), loss_fn), xs)
    return jax.tree_util.tree_map(lambda x: jnp.mean(x, axis=0), metrics)

  def from_seed(state, seed, length, padded_length):
    key = jax.random.PRNGKey(seed)

    def batch_of(i):
      batch = data_lib.eval_batch(task, key, batch_size, i, length, padded_length)
      if mesh is None:
        return batch
      return jax.lax.with_sharding_constraint(batch, NamedSharding(mesh, P(parallel.AXIS)))
    return mean(state, batch_of, jnp.arange(num_batches))

  def from_batches(state, batches):
    return mean(state, lambda batch: batch, batches)

  out = {} if mesh is None else {"out_shardings": NamedSharding(mesh, P())}
  if sampled:
    return jax.jit(from_seed, static_argnums=(3,), **out)
  return jax.jit(from_batches, **out)


def pad_batches(batches: dict[str, np.ndarray], length: int, padded_length: int,
                output_kind: str) -> dict[str, np.ndarray]:
  """Host batches [num_batches, B, length, ...] right-padded to ``padded_length``, with lengths."""
  extra = padded_length - length
  out = dict(batches)
  time_keys = ("inputs", "targets", "mask") if output_kind == base.PER_TOKEN else ("inputs",)
  for key in time_keys:
    x = out[key]
    out[key] = np.pad(x, [(0, 0), (0, 0), (0, extra)] + [(0, 0)] * (x.ndim - 3))
  out["lengths"] = np.full(batches["inputs"].shape[:2], length, np.int32)
  return out


def to_devices(batches: dict[str, np.ndarray], mesh: Mesh | None) -> dict[str, jax.Array]:
  """Stacked batches on the mesh, each batch's rows split over the data axis (every process holds
  the full arrays and keeps its devices' rows)."""
  if mesh is None:
    return {k: jax.device_put(v) for k, v in batches.items()}
  sharding = NamedSharding(mesh, P(None, parallel.AXIS))
  return {k: jax.make_array_from_callback(v.shape, sharding, lambda idx, v=v: v[idx])
          for k, v in batches.items()}


class Evaluation:
  """``self(state, length) -> metrics`` (device scalars) for the lengths of a run."""

  def __init__(self, task: base.Task, *, batch_size: int, num_batches: int, seed: int,
               mesh: Mesh | None = None, buckets: Sequence[int] | None = None,
               sets: dict[int, dict[str, np.ndarray]] | None = None):
    """``mesh`` None: one device (as under pmap); ``buckets`` None: exact lengths; ``sets``: host
    batches per length from ``read_sets`` (None: sampled from ``seed``)."""
    self.buckets = None if buckets is None else tuple(buckets)
    self.sets = sets
    self.seed = int(seed)
    self._mesh = mesh
    self._task = task
    self._fn = _eval_fn(task, batch_size=batch_size, num_batches=num_batches, mesh=mesh,
                        sampled=sets is None)
    self._data: dict[int, Any] = {}
    self._compiled: dict[Any, Any] = {}

  def _args(self, n: int) -> tuple[tuple, tuple, int]:
    """(traced arguments after the state, static ones, the key of the program) for length n."""
    padded = lengths_lib.bucket_of(n, self.buckets)
    if self.sets is None:
      return (self.seed, None if self.buckets is None else n), (padded,), padded
    if n not in self._data:
      batches = self.sets[n]
      if self.buckets is not None:
        batches = pad_batches(batches, n, padded, self._task.output_kind)
      self._data[n] = to_devices(batches, self._mesh)
    return (self._data[n],), (), padded

  def compile(self, state, lengths: Sequence[int]) -> int:
    """Compiles the programs ``lengths`` need now (a shape error shows at start and no compile
    lands mid-run); returns how many programs that is."""
    for n in lengths:
      traced, static, key = self._args(n)
      if key not in self._compiled:
        self._compiled[key] = self._fn.lower(state, *traced, *static).compile()
    return len(self._compiled)

  def __call__(self, state, n: int):
    traced, static, key = self._args(n)
    if key in self._compiled:
      return self._compiled[key](state, *traced)
    return self._fn(state, *traced, *static)


def evaluate(evaluation: Evaluation, state, lengths: Sequence[int], step: int) -> dict:
  """An evaluation record: ``{"step": S, "lengths": {"64": {metric: value}}}``."""
  device_metrics = {n: evaluation(state, n) for n in lengths}  # dispatch all, then fetch
  return {"step": step, "lengths": {str(n): parallel.host_scalars(m)
                                    for n, m in device_metrics.items()}}


def mean_over_lengths(record: dict) -> dict:
  per_length = list(record["lengths"].values())
  return {k: float(np.mean([m[k] for m in per_length])) for k in per_length[0]}


def flat_metrics(record: dict | None, prefix: str, per_length: Sequence[str]) -> dict[str, float]:
  """summary.json's and the sweep rows' columns of a record, for prefix "val_": every metric's mean
  over lengths (``val_loss``), and the ``per_length`` metrics at each length (``val_accuracy@64``:
  one metric only, or a run at hundreds of lengths would give thousands); empty for no record."""
  if not record:
    return {}
  out = {f"{prefix}{k}": v for k, v in mean_over_lengths(record).items()}
  for n, metrics in sorted(record["lengths"].items(), key=lambda kv: int(kv[0])):
    out.update({f"{prefix}{k}@{n}": float(metrics[k]) for k in per_length if k in metrics})
  return out


def read_sets(data_dir: str, task: base.Task, lengths: Sequence[int], *, batch_size: int,
              num_batches: int, seed: int) -> dict[int, dict[str, np.ndarray]]:
  """{length: batches with a leading [num_batches, batch_size] pair of axes} read from the sets."""
  examples = batch_size * num_batches
  fields = "".join(f" --task_config {k}={v}" for k, v in registry.task_fields(task).items())
  build = (f"Build it with: scripts/build_data.py --task {task.name} --data_dir {data_dir} "
           f"--lengths {','.join(str(n) for n in lengths)} --examples {examples} --seed {seed}"
           f"{fields}")
  out = {}
  for n in lengths:
    try:
      batches = list(tfds_builder.eval_batches(data_dir, task, n, batch_size, seed=seed,
                                               num_batches=num_batches))
    except ValueError as e:
      raise ValueError(f"eval_data_dir={data_dir!r}: {e}. {build}") from None
    if len(batches) < num_batches:
      raise ValueError(
          f"eval_data_dir={data_dir!r}: the {task.name} set at length {n} (seed {seed}) holds "
          f"{len(batches) * batch_size} usable examples; eval_batches * batch_size = {examples} "
          f"are needed. {build}")
    out[n] = {k: np.stack([b[k] for b in batches]) for k in batches[0]}
  return out


SPLITS = ("test", "val")


def from_config(config, task: base.Task, mesh: Mesh | None, lengths: Sequence[int],
                buckets: Sequence[int] | None, *, split: str = "test") -> Evaluation:
  """The run's evaluation of ``split``, from its config fields (eval_data_dir, eval_seed or
  val_seed, batch_size, eval_batches): the sets are read here, before anything compiles."""
  if split not in SPLITS:
    raise ValueError(f"split={split!r}; allowed: {SPLITS}")
  seed = config.eval_seed if split == "test" else config.val_seed
  data_dir = config.get("eval_data_dir", "") if split == "test" else ""
  sets = read_sets(data_dir, task, lengths, batch_size=config.batch_size,
                   num_batches=config.eval_batches, seed=seed) if data_dir else None
  return Evaluation(task, batch_size=config.batch_size, num_batches=config.eval_batches,
                    seed=seed, mesh=mesh, buckets=buckets, sets=sets)


def splits(config, task: base.Task, mesh: Mesh | None, lengths: Sequence[int],
           buckets: Sequence[int] | None) -> tuple[Evaluation, Evaluation]:
  """(validation, test) of a run; sampled test batches share the validation's programs."""
  test = from_config(config, task, mesh, lengths, buckets, split="test")
  if test.sets is not None:
    return from_config(config, task, mesh, lengths, buckets, split="val"), test
  val = copy.copy(test)  # the compiled programs are shared (the seed is traced), not copied
  val.seed = int(config.val_seed)
  return val, test
