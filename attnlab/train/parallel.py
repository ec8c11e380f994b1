"""Data parallelism: where the train state lives and how the train step is compiled for it.

``Jit`` (default): the state is replicated over a 1-D device mesh and donated; the global batch is
sampled inside the step and constrained to ``P("data")``, so with partitionable threefry each device
(and process) generates only its own rows, and the values do not depend on the sharding. ``Pmap``:
the state carries a leading device axis; each device samples the global batch and keeps its slice.
Both answer the same calls, so no caller branches on the parallelism.
"""

from __future__ import annotations

import flax.jax_utils
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXIS = "data"  # mesh axis and pmap axis name


def check_batch(batch_size: int, accum_steps: int) -> None:
  """ValueError unless the batch splits evenly over all devices and then into micro-batches."""
  n = jax.device_count()
  if batch_size % n:
    raise ValueError(f"batch_size={batch_size} is not divisible by the device count ({n})")
  if (batch_size // n) % accum_steps:
    raise ValueError(f"batch_size={batch_size} over {n} devices gives {batch_size // n} rows per "
                     f"device, not divisible by optimizer.grad_accum_steps={accum_steps}")


def make_mesh(devices=None) -> Mesh:
  """A 1-D data mesh over ``devices`` (default: every device of every process)."""
  return Mesh(np.asarray(jax.devices() if devices is None else devices), (AXIS,))


def abstract_state(create_fn, mesh: Mesh):
  """Shapes, dtypes and the replicated sharding of a state, for checkpoint restore."""
  replicated = NamedSharding(mesh, P())
  return jax.tree_util.tree_map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated),
      jax.eval_shape(create_fn))


class Jit:
  """One ``jax.jit`` of the step over the mesh; the state is what checkpoints hold (one copy)."""

  def __init__(self, mesh: Mesh):
    self.mesh = self.eval_mesh = mesh  # evaluation batches are sharded over the mesh too

  def init_state(self, create_fn):
    return jax.jit(create_fn, out_shardings=NamedSharding(self.mesh, P()))()

  def saved(self, state):  # as checkpoints hold it and evaluation reads it
    return state

  def restored(self, state):  # a saved state as the compiled step takes it
    return state

  def train_fn(self, data, update, dropout_key):
    """``fn(state, length) -> (state, metrics)``: batch ``state.step`` of ``data`` (TrainData)
    sampled inside the step, then ``update(state, batch, rng)``; one program per padded length."""
    replicated, rows = NamedSharding(self.mesh, P()), NamedSharding(self.mesh, P(AXIS))

    def step(state, length, padded_length):
      batch = jax.lax.with_sharding_constraint(data.batch(state.step, length, padded_length), rows)
      return update(state, batch, dropout_key)

    jitted = jax.jit(step, static_argnums=2, donate_argnums=0,
                     out_shardings=(replicated, replicated))
    return lambda state, length: jitted(state, *data.program(length))


class Pmap:
  """``jax.pmap`` of the step over the local devices; the state is stacked along them."""
  eval_mesh = None  # the saved state sits on one device: evaluate there

  def init_state(self, create_fn):
    return flax.jax_utils.replicate(jax.jit(create_fn)(), jax.local_devices())

  def saved(self, state):
    return flax.jax_utils.unreplicate(state)

  def restored(self, state):
    return flax.jax_utils.replicate(state, jax.local_devices())

  def train_fn(self, data, update, dropout_key):
    """As ``Jit.train_fn``; each device keeps its slice of the global batch and its own dropout
    stream, and ``update`` averages over the devices (``axis_name``)."""
    rows = data.batch_size // jax.device_count()

    def step(state, length, padded_length):
      batch, index = data.batch(state.step, length, padded_length), jax.lax.axis_index(AXIS)
      batch = jax.tree_util.tree_map(
          lambda x: jax.lax.dynamic_slice_in_dim(x, index * rows, rows), batch)
      return update(state, batch, jax.random.fold_in(dropout_key, index), axis_name=AXIS)

    pmapped = jax.pmap(step, axis_name=AXIS, in_axes=(0, None, None),
                       static_broadcasted_argnums=2, donate_argnums=0)
    return lambda state, length: pmapped(state, *data.program(length))


PARALLELISMS = ("jit", "pmap")


def make(parallelism: str, mesh: Mesh) -> Jit | Pmap:
  """The adapter of ``config.parallelism``."""
  return Jit(mesh) if parallelism == "jit" else Pmap()


def host_scalars(metrics) -> dict:
  """Fetches replicated (or pmap-stacked) scalar metrics to Python floats."""
  def get(x):
    x = np.asarray(x.addressable_data(0)) if isinstance(x, jax.Array) else np.asarray(x)
    return float(x.reshape(-1)[0])
  return {k: get(v) for k, v in metrics.items()}
