"""Modular arithmetic without brackets (Delétang et al. 2023, regular): reduce an expression like
``1 + 2 * 3 - 4`` modulo ``modulus`` with the usual precedence (products first).

Tokens: numbers 0..m-1, then PLUS = m, MINUS = m + 1, TIMES = m + 2, BLANK = m + 3. The expression
alternates numbers and operators and so has odd length; for an even L one leading BLANK pads it, so
the expression always ends at the last position, where the target (one class in 0..m-1) is read.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from attnlab.tasks import base
from attnlab.tasks import common


@dataclasses.dataclass(frozen=True)
class ModularArithmeticConfig:
  modulus: int = 5  # numbers and the result lie in 0..modulus-1 (5 in the paper)

  def __post_init__(self):
    common.check_at_least("modulus", self.modulus, 2)


def evaluate(numbers_BT: jax.Array, ops_BO: jax.Array, modulus: int) -> jax.Array:
  """Value mod m of n0 op0 n1 op1 .. (ops 0 +, 1 -, 2 *), products first, as a left-to-right scan."""
  init = (jnp.zeros_like(numbers_BT[:, 0]), numbers_BT[:, 0], jnp.int32(modulus))
  (total_B, term_B, _), _ = jax.lax.scan(_eval_step, init, (ops_BO.T, numbers_BT[:, 1:].T))
  return (total_B + term_B) % modulus


def _eval_step(carry, op_and_number):
  # Module level (modulus in the carry, not a closure): un-jitted calls reuse the traced body.
  total_B, term_B, m = carry
  op_B, x_B = op_and_number
  closes_B = op_B != 2  # + or - closes the running product and starts a new signed term
  new_term_B = jnp.where(op_B == 0, x_B, jnp.where(op_B == 1, (-x_B) % m, (term_B * x_B) % m))
  total_B = jnp.where(closes_B, (total_B + term_B) % m, total_B)
  return (total_B, new_term_B, m), None


def sample(config: ModularArithmeticConfig, rng: jax.Array, batch_size: int, length: int) -> dict:
  common.check_batch(batch_size)
  common.check_length("modular_arithmetic", length, 1, "at least one number")
  m = config.modulus
  expr_len = length if length % 2 else length - 1
  num_rng, op_rng = jax.random.split(rng)
  numbers_BT = jax.random.randint(num_rng, (batch_size, expr_len // 2 + 1), 0, m, dtype=jnp.int32)
  ops_BO = jax.random.randint(op_rng, (batch_size, expr_len // 2), 0, 3, dtype=jnp.int32)
  expr_BE = jnp.zeros((batch_size, expr_len), jnp.int32).at[:, ::2].set(numbers_BT)
  expr_BE = expr_BE.at[:, 1::2].set(m + ops_BO)
  pad_BP = jnp.full((batch_size, length - expr_len), m + 3, jnp.int32)
  targets_B = evaluate(numbers_BT, ops_BO, m)
  return {"inputs": jnp.concatenate([pad_BP, expr_BE], axis=1), "targets": targets_B,
          "mask": jnp.ones((batch_size,), jnp.float32)}


def make(config: ModularArithmeticConfig) -> base.Task:
  return base.Task(name="modular_arithmetic", config=config, vocab_size=config.modulus + 4,
                   output_size=config.modulus, output_kind=base.SEQUENCE,
                   sample_fn=functools.partial(sample, config))
