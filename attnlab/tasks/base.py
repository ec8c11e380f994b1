"""The task interface every synthetic task implements.

A batch is a dict of arrays, generated on the device inside the compiled step:

  inputs   int32[B, L] token ids           (input_kind == "tokens")
           float32[B, L, D] features       (input_kind == "features", D = input_features)
  targets  int32[B, L]   per-token classes (output_kind == "per_token")
           int32[B]      one class per sequence (output_kind == "sequence")
           float32[B]    regression target (output_kind == "regression")
  mask     float32, same shape as targets: 1 where the loss and metrics count, 0 elsewhere.

For ``sequence`` and ``regression`` tasks the model reads its prediction at the last position.

Length buckets: a task with a ``padded_sample_fn`` also samples right-padded batches,
``sample_padded(rng, batch_size, lengths, padded_length)``: every row b holds an example of length
``lengths[b]`` (traced; a scalar or [B]) in the first positions of a ``padded_length`` buffer, the
batch gains ``lengths`` int32[B], and padded positions hold a filler token and mask 0. Drawn time-major,
row b's first ``lengths[b]`` positions equal ``sample(rng, batch_size, lengths[b])``'s row b, so
one compiled program serves every length up to ``padded_length``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

PER_TOKEN = "per_token"
SEQUENCE = "sequence"
REGRESSION = "regression"
OUTPUT_KINDS = (PER_TOKEN, SEQUENCE, REGRESSION)

TOKENS = "tokens"
FEATURES = "features"
INPUT_KINDS = (TOKENS, FEATURES)

Batch = Mapping[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class Task:
  """A task: its sizes, kinds and a pure, jittable sampler. Built by each task module's ``make``."""

  name: str
  config: Any  # the task's own frozen dataclass config
  vocab_size: int  # input token ids lie in [0, vocab_size) (ignored for feature inputs)
  output_size: int  # classes per prediction (1 for regression)
  output_kind: str  # one of OUTPUT_KINDS
  sample_fn: Callable[[jax.Array, int, int], dict]  # (rng, batch_size, length) -> batch
  input_kind: str = TOKENS  # one of INPUT_KINDS
  input_features: int = 0  # D for feature inputs
  min_length: int = 1  # shortest input length L this config accepts (sample raises ValueError below)
  min_length_fields: tuple[str, ...] = ()  # the config fields min_length follows (named in errors)
  # (rng, batch_size, lengths_B, padded_length) -> batch with "lengths"; None: no length buckets.
  padded_sample_fn: Callable[[jax.Array, int, jax.Array, int], dict] | None = None

  def __post_init__(self):
    if self.output_kind not in OUTPUT_KINDS:
      raise ValueError(f"output_kind={self.output_kind!r}; allowed: {OUTPUT_KINDS}")
    if self.input_kind not in INPUT_KINDS:
      raise ValueError(f"input_kind={self.input_kind!r}; allowed: {INPUT_KINDS}")

  def sample(self, rng: jax.Array, batch_size: int, length: int) -> dict:
    return self.sample_fn(rng, batch_size, length)

  def describe_min_length(self) -> str:
    """"task 'copy''s minimum length 21 (set by task.num_tokens=10)", for length errors."""
    fields = ", ".join(f"task.{f}={getattr(self.config, f)!r}" for f in self.min_length_fields)
    return (f"task {self.name!r}'s minimum length {self.min_length}"
            + (f" (set by {fields})" if fields else ""))

  @property
  def pads(self) -> bool:
    """Whether the task samples padded batches (length buckets)."""
    return self.padded_sample_fn is not None

  def sample_padded(self, rng: jax.Array, batch_size: int, lengths, padded_length: int) -> dict:
    """A right-padded batch: row b an example of length lengths[b] (see the module docstring)."""
    if self.padded_sample_fn is None:
      raise ValueError(f"task {self.name!r} has no padded sampler (length buckets); set "
                       "length_buckets='off'")
    lengths_B = jnp.broadcast_to(jnp.asarray(lengths, jnp.int32), (batch_size,))
    return self.padded_sample_fn(rng, batch_size, lengths_B, padded_length)


def unpadded(padded_sample_fn: Callable) -> Callable[[jax.Array, int, int], dict]:
  """The plain sampler of a padded one: every row of length ``length``, no padding."""
  def sample(rng: jax.Array, batch_size: int, length: int) -> dict:
    batch = padded_sample_fn(rng, batch_size, jnp.full((batch_size,), length, jnp.int32), length)
    return {k: v for k, v in batch.items() if k != "lengths"}
  return sample


def valid_BL(lengths_B: jax.Array, padded_length: int) -> jax.Array:
  """bool[B, P]: True before each row's length."""
  return jnp.arange(padded_length)[None, :] < lengths_B[:, None]


def time_major_randint(rng: jax.Array, batch_size: int, steps: int, low: int, high: int) -> jax.Array:
  """int32[B, steps] drawn as [steps, B]: with JAX's partitionable threefry the first n steps are
  the same for every ``steps`` >= n, which makes padded and unpadded samples agree."""
  return jax.random.randint(rng, (steps, batch_size), low, high, dtype=jnp.int32).T
