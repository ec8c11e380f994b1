"""Modular arithmetic without brackets (Delétang et al. 2023, regular): reduce an expression like
``1 + 2 * 3 - 4`` modulo ``modulus`` with the usual precedence (products first).

Tokens: numbers 0..m-1, then PLUS = m, MINUS = m + 1, TIMES = m + 2, BLANK = m + 3. The expression
alternates numbers and operators and so has odd length; for an even L one leading BLANK pads it, so
the expression always ends at the last position, where the target (one class in 0..m-1) is read.
In padded batches each row's expression ends at its own last position, BLANK after it.
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


def evaluate(numbers_BT: jax.Array, ops_BO: jax.Array, modulus: int,
             num_ops_B: jax.Array | None = None) -> jax.Array:
  """Value mod m of n0 op0 n1 op1 .. (ops 0 +, 1 -, 2 *), products first, as a left-to-right scan;
  with ``num_ops_B`` only each row's first num_ops[b] operators (and numbers after them) count."""
  steps = ops_BO.shape[1]
  used_OB = (jnp.ones((steps, ops_BO.shape[0]), bool) if num_ops_B is None
             else jnp.arange(steps)[:, None] < num_ops_B[None, :])
  init = (jnp.zeros_like(numbers_BT[:, 0]), numbers_BT[:, 0], jnp.int32(modulus))
  (total_B, term_B, _), _ = jax.lax.scan(_eval_step, init,
                                         (ops_BO.T, numbers_BT[:, 1:steps + 1].T, used_OB))
  return (total_B + term_B) % modulus


def _eval_step(carry, op_number_used):
  # Module level (modulus in the carry, not a closure): un-jitted calls reuse the traced body.
  total_B, term_B, m = carry
  op_B, x_B, used_B = op_number_used
  closes_B = op_B != 2  # + or - closes the running product and starts a new signed term
  new_term_B = jnp.where(op_B == 0, x_B, jnp.where(op_B == 1, (-x_B) % m, (term_B * x_B) % m))
  new_total_B = jnp.where(closes_B, (total_B + term_B) % m, total_B)
  return (jnp.where(used_B, new_total_B, total_B), jnp.where(used_B, new_term_B, term_B), m), None


def sample_padded(config: ModularArithmeticConfig, rng: jax.Array, batch_size: int,
                  lengths_B: jax.Array, padded_length: int) -> dict:
  """Row b: the expression of length lengths[b] (a leading BLANK when it is even), BLANK after."""
  common.check_batch(batch_size)
  common.check_length("modular_arithmetic", padded_length, 1, "at least one number")
  m, blank = config.modulus, config.modulus + 3
  expr_B = lengths_B - (1 - lengths_B % 2)  # odd: numbers and operators alternate
  offset_B = lengths_B - expr_B
  num_ops_B = expr_B // 2
  slots = padded_length // 2
  num_rng, op_rng = jax.random.split(rng)
  numbers_BT = base.time_major_randint(num_rng, batch_size, slots + 1, 0, m)
  ops_BO = base.time_major_randint(op_rng, batch_size, slots, 0, 3)
  rows_B1 = jnp.arange(batch_size)[:, None]

  def place(inputs_BL, values_BN, first_B, count_B):
    """values[b, i] at position first[b] + 2 i for i < count[b]; the rest dropped."""
    i_N = jnp.arange(values_BN.shape[1])
    pos_BN = jnp.where(i_N[None] < count_B[:, None], first_B[:, None] + 2 * i_N[None],
                       padded_length)
    return inputs_BL.at[rows_B1, pos_BN].set(values_BN, mode="drop")

  inputs_BL = jnp.full((batch_size, padded_length), blank, jnp.int32)
  inputs_BL = place(inputs_BL, numbers_BT, offset_B, num_ops_B + 1)
  inputs_BL = place(inputs_BL, m + ops_BO, offset_B + 1, num_ops_B)
  return {"inputs": inputs_BL, "targets": evaluate(numbers_BT, ops_BO, m, num_ops_B),
          "mask": jnp.ones((batch_size,), jnp.float32), "lengths": lengths_B}


def make(config: ModularArithmeticConfig) -> base.Task:
  padded = functools.partial(sample_padded, config)
  return base.Task(name="modular_arithmetic", config=config, vocab_size=config.modulus + 4,
                   output_size=config.modulus, output_kind=base.SEQUENCE,
                   sample_fn=base.unpadded(padded), padded_sample_fn=padded)
