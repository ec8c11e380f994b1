"""The task interface every synthetic task implements.

A batch is a dict of arrays, generated on the device inside the compiled step:

  inputs   int32[B, L] token ids           (input_kind == "tokens")
           float32[B, L, D] features       (input_kind == "features", D = input_features)
  targets  int32[B, L]   per-token classes (output_kind == "per_token")
           int32[B]      one class per sequence (output_kind == "sequence")
           float32[B]    regression target (output_kind == "regression")
  mask     float32, same shape as targets: 1 where the loss and metrics count, 0 elsewhere.

For ``sequence`` and ``regression`` tasks the model reads its prediction at the last position.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax

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

  def __post_init__(self):
    if self.output_kind not in OUTPUT_KINDS:
      raise ValueError(f"output_kind={self.output_kind!r}; allowed: {OUTPUT_KINDS}")
    if self.input_kind not in INPUT_KINDS:
      raise ValueError(f"input_kind={self.input_kind!r}; allowed: {INPUT_KINDS}")

  def sample(self, rng: jax.Array, batch_size: int, length: int) -> dict:
    return self.sample_fn(rng, batch_size, length)
