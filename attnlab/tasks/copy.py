"""Copy and delayed copy (Hochreiter & Schmidhuber 1997; Arjovsky, Shah & Bengio 2016, "copying memory").

Input of length L: ``n`` data symbols, a blank delay, a MARKER ("now copy"), then ``n`` blank answer
slots; the targets at the answer slots are the data, in order (per-token, mask 1 there only):

  inputs   d1 .. dn  _ _ .. _  M  _ .. _
  targets  0  .. 0   0 0 .. 0  0  d1 .. dn

``copy`` fills the length (``num_tokens=0``: n = (L - 1) // 2, delay 0 or 1). ``delayed_copy``
fixes n (default 10, as in Arjovsky et al.) so the blank delay L - 2n - 1 grows with L: the delay
is the dependency distance knob. ``noise_rate`` puts distractors on the blank positions (noise.py).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from attnlab.tasks import base
from attnlab.tasks import common
from attnlab.tasks import noise


@dataclasses.dataclass(frozen=True)
class CopyConfig:
  alphabet_size: int = 8  # number of data symbols
  num_tokens: int = 0  # symbols to copy; 0 = as many as fit, (L - 1) // 2
  noise_rate: float = 0.0  # probability that a blank input becomes a distractor

  def __post_init__(self):
    common.check_at_least("alphabet_size", self.alphabet_size, 2, "the data must carry information")
    common.check_at_least("num_tokens", self.num_tokens, 0)
    common.check_noise_rate(self.noise_rate)


@dataclasses.dataclass(frozen=True)
class DelayedCopyConfig(CopyConfig):
  num_tokens: int = 10  # symbols to copy; the blank delay is L - 2 * num_tokens - 1


def min_length(config: CopyConfig) -> int:
  return 2 * max(config.num_tokens, 1) + 1


def sample(config: CopyConfig, rng: jax.Array, batch_size: int, length: int) -> dict:
  common.check_batch(batch_size)
  common.check_length("copy", length, min_length(config),
                      f"num_tokens={config.num_tokens} data, a marker and as many answer slots")
  n = config.num_tokens or (length - 1) // 2
  data_rng, noise_rng = jax.random.split(rng)
  data_BN = jax.random.randint(data_rng, (batch_size, n), common.FIRST_CONTENT,
                               common.FIRST_CONTENT + config.alphabet_size, dtype=jnp.int32)
  blank_BL = jnp.full((batch_size, length), common.BLANK, jnp.int32)
  inputs_BL = blank_BL.at[:, :n].set(data_BN).at[:, length - n - 1].set(common.MARKER)
  inputs_BL = noise.add_noise(noise_rng, inputs_BL, config.noise_rate)
  targets_BL = blank_BL.at[:, length - n:].set(data_BN)
  return {"inputs": inputs_BL, "targets": targets_BL,
          "mask": common.answer_mask(batch_size, length, length - n)}


def make(config: CopyConfig) -> base.Task:
  name = "delayed_copy" if isinstance(config, DelayedCopyConfig) else "copy"
  vocab = common.FIRST_CONTENT + config.alphabet_size
  return base.Task(name=name, config=config, vocab_size=vocab, output_size=vocab,
                   output_kind=base.PER_TOKEN, sample_fn=functools.partial(sample, config),
                   min_length=min_length(config), min_length_fields=("num_tokens",))
