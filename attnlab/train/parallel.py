"""Data parallelism: the same train step compiled with jax.jit over a Mesh, or under jax.pmap.

jit (default): the state is replicated (``P()``) and donated; the global batch is sampled inside
the step and constrained to ``P("data")``, so with partitionable threefry each device (and each
process, multi-host) generates only its own rows, and the values do not depend on the sharding.
pmap: the state carries a leading device axis; each device samples the same global batch key and
keeps its slice, gradients and metrics are averaged with ``pmean``.
"""

from __future__ import annotations

import logging

import flax.jax_utils
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from attnlab.tasks import lengths as lengths_lib
from attnlab.train import step as step_lib

log = logging.getLogger(__name__)

PARALLELISMS = ("jit", "pmap")
AXIS = "data"  # mesh axis and pmap axis name


def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None, auto: bool = False) -> None:
  """Starts multi-host JAX from explicit flags, or (``auto``) lets JAX detect its cluster.

  JAX's own detection covers SLURM, Open MPI, Kubernetes and Cloud TPU pods; on a machine that
  is none of these, ``auto`` makes ``jax.distributed.initialize`` raise, which is what a run asked
  to be distributed should do. Without flags and ``auto`` this is a single-process run.
  """
  if coordinator_address:
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)
  elif auto:
    jax.distributed.initialize()
  else:
    return
  log.info("jax.distributed: process %d of %d, %d local / %d global devices",
               jax.process_index(), jax.process_count(), jax.local_device_count(),
               jax.device_count())


def validate(parallelism: str, batch_size: int, accum_steps: int) -> None:
  if parallelism not in PARALLELISMS:
    raise ValueError(f"parallelism={parallelism!r}; allowed: {PARALLELISMS}")
  n = jax.device_count()
  if batch_size % n:
    raise ValueError(f"batch_size={batch_size} is not divisible by the device count ({n})")
  if (batch_size // n) % accum_steps:
    raise ValueError(f"batch_size={batch_size} over {n} devices gives {batch_size // n} rows per "
                     f"device, not divisible by optimizer.grad_accum_steps={accum_steps}")


def make_mesh(devices=None) -> Mesh:
  """A 1-D data mesh over ``devices`` (default: every device of every process)."""
  return Mesh(np.asarray(jax.devices() if devices is None else devices), (AXIS,))


def init_state(create_fn, parallelism: str, mesh: Mesh):
  """Builds the state on the devices: replicated over the mesh, or stacked for pmap."""
  if parallelism == "pmap":
    return flax.jax_utils.replicate(jax.jit(create_fn)(), jax.local_devices())
  return jax.jit(create_fn, out_shardings=NamedSharding(mesh, P()))()


def abstract_state(create_fn, mesh: Mesh):
  """Shapes, dtypes and the replicated sharding of a state, for checkpoint restore."""
  replicated = NamedSharding(mesh, P())
  return jax.tree_util.tree_map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated),
      jax.eval_shape(create_fn))


def to_saveable(state, parallelism: str):
  """The state as checkpoints hold it: one copy, whatever the parallelism."""
  return flax.jax_utils.unreplicate(state) if parallelism == "pmap" else state


def from_saveable(state, parallelism: str):
  return flax.jax_utils.replicate(state, jax.local_devices()) if parallelism == "pmap" else state


def make_train_fn(task, *, parallelism: str, mesh: Mesh, batch_size: int, data_seed: int,
                  seed: int, accum_steps: int, buckets=None, example_lengths=None,
                  train_examples: int = 0):
  """``fn(state, length) -> (state, metrics)``, the batch sampled inside the compiled step.

  ``buckets`` None: the batch has exactly ``length`` (one compile per distinct length). Buckets:
  it is padded to ``length``'s bucket and carries its length (one compile per bucket).
  ``example_lengths=(lo, hi)`` (with buckets): each row's length is drawn from [lo, hi] inside the
  step and the batch padded to hi's bucket; ``length`` is then ignored (one compile).
  ``train_examples`` N > 0: batches come from a fixed set of N examples (tasks/finite.py).
  """
  data_rng = jax.random.PRNGKey(data_seed)
  # The dropout stream: distinct from the init key (PRNGKey(seed)) by a fold_in.
  dropout_rng = jax.random.fold_in(jax.random.PRNGKey(seed), 1)

  def batch_of(state, length, padded_length):
    if padded_length is None:
      return step_lib.sample_batch(task, data_rng, state.step, batch_size, length,
                                   train_examples=train_examples)
    if example_lengths is not None:
      length = step_lib.example_lengths(data_rng, state.step, batch_size, *example_lengths)
    return step_lib.sample_batch(task, data_rng, state.step, batch_size, length, padded_length,
                                 train_examples=train_examples)

  if parallelism == "pmap":
    def pmap_fn(state, length, padded_length):
      batch = batch_of(state, length, padded_length)
      index = jax.lax.axis_index(AXIS)
      per = batch_size // jax.device_count()
      batch = jax.tree_util.tree_map(
          lambda x: jax.lax.dynamic_slice_in_dim(x, index * per, per), batch)
      rng = jax.random.fold_in(dropout_rng, index)
      return step_lib.train_step(state, batch, rng, accum_steps=accum_steps, axis_name=AXIS)
    exact = jax.pmap(lambda s, n: pmap_fn(s, n, None), axis_name=AXIS,
                     static_broadcasted_argnums=1, donate_argnums=0)
    padded = jax.pmap(pmap_fn, axis_name=AXIS, in_axes=(0, None, None),
                      static_broadcasted_argnums=2, donate_argnums=0)
  else:
    batch_sharding = NamedSharding(mesh, P(AXIS))
    replicated = NamedSharding(mesh, P())

    def jit_fn(state, length, padded_length):
      batch = jax.lax.with_sharding_constraint(batch_of(state, length, padded_length),
                                               batch_sharding)
      return step_lib.train_step(state, batch, dropout_rng, accum_steps=accum_steps)
    exact = jax.jit(lambda s, n: jit_fn(s, n, None), static_argnums=1, donate_argnums=0,
                    out_shardings=(replicated, replicated))
    padded = jax.jit(jit_fn, static_argnums=2, donate_argnums=0,
                     out_shardings=(replicated, replicated))

  if buckets is None:
    return exact
  top = None if example_lengths is None else lengths_lib.bucket_of(example_lengths[1], buckets)

  def fn(state, length):
    if top is not None:
      return padded(state, jnp.int32(example_lengths[1]), top)
    return padded(state, jnp.int32(length), lengths_lib.bucket_of(length, buckets))
  return fn


def host_scalars(metrics) -> dict:
  """Fetches replicated (or pmap-stacked) scalar metrics to Python floats."""
  def get(x):
    x = np.asarray(x.addressable_data(0)) if isinstance(x, jax.Array) else np.asarray(x)
    return float(x.reshape(-1)[0])
  return {k: get(v) for k, v in metrics.items()}
