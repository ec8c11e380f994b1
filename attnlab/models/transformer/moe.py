"""Mixture-of-experts feed-forward: top-k softmax routing with expert capacity (Switch/GShard).

Each token picks its top_k experts by router probability. Every expert holds at most capacity =
ceil(capacity_factor * tokens * top_k / experts) tokens, tokens being the unpadded ones (mask_BL;
all B * L without a mask): the buffers are sized for B * L, and with a mask the slots past the
unpadded tokens' capacity are dropped, so a padded batch routes exactly as the unpadded one. Slots are claimed in this order: by position (earlier first), then by choice rank
(at one position all first choices before any second choice), then by batch row. A choice past
capacity is dropped: that expert contributes zero for the token, and the block's residual carries
it. Ordering by position first keeps a causal decoder causal: a token competes only with tokens at
the same or earlier positions. Padded tokens (mask_BL False) are not routed and take no slot.

Gates: the router probability of the chosen expert for top_k = 1 (Switch); for top_k > 1 the top-k
probabilities renormalised to sum to one (GShard).

Load-balancing loss (Switch eq. 4): E * sum_e f_e * P_e, where f_e is the fraction of (unpadded)
tokens whose first choice is e, counted before capacity drops, and P_e the mean router probability
of e. It is 1 for a perfectly balanced router. It is sown, times aux_weight, as
"losses"/"moe_aux_loss".
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from attnlab.models import initializers


def capacity(num_tokens: int, num_experts: int, top_k: int, capacity_factor: float) -> int:
  """ceil(capacity_factor * tokens * k / E), at least 1 and at most the token count."""
  # The small epsilon keeps exact products such as 1.1 * 10 from rounding up one slot.
  c = math.ceil(capacity_factor * num_tokens * top_k / num_experts - 1e-9)
  return max(1, min(c, num_tokens))


def traced_capacity(num_tokens, num_experts: int, top_k: int, capacity_factor: float):
  """``capacity`` of a traced token count (the unpadded tokens of a padded batch)."""
  c = jnp.ceil(capacity_factor * num_tokens * top_k / num_experts - 1e-9).astype(jnp.int32)
  return jnp.clip(c, 1, jnp.maximum(num_tokens, 1))


def route(probs_BLE, top_k: int, capacity_: int, mask_BL=None, limit=None):
  """-> expert_BLA (int), slot_BLA (int, == capacity_ when dropped), gate_BLA (float32).

  ``limit`` (traced, <= capacity_): the slots an expert may fill; the buffer has capacity_.
  """
  b, l, e = probs_BLE.shape
  top_p_BLA, expert_BLA = jax.lax.top_k(probs_BLE, top_k)
  gate_BLA = top_p_BLA if top_k == 1 else top_p_BLA / jnp.sum(top_p_BLA, -1, keepdims=True)
  chosen_BLAE = jax.nn.one_hot(expert_BLA, e, dtype=jnp.int32)
  if mask_BL is not None:
    chosen_BLAE = chosen_BLAE * mask_BL[:, :, None, None].astype(jnp.int32)
  # Claim order: position, then rank, then batch row; a running count per expert gives the slot.
  chosen_ME = jnp.transpose(chosen_BLAE, (1, 2, 0, 3)).reshape(l * top_k * b, e)
  slot_ME = jnp.cumsum(chosen_ME, axis=0) - 1
  slot_BLAE = jnp.transpose(slot_ME.reshape(l, top_k, b, e), (2, 0, 1, 3))
  slot_BLA = jnp.sum(slot_BLAE * chosen_BLAE, axis=-1)
  routed_BLA = jnp.sum(chosen_BLAE, axis=-1) > 0
  keep_BLA = jnp.logical_and(routed_BLA, slot_BLA < (capacity_ if limit is None else limit))
  slot_BLA = jnp.where(keep_BLA, slot_BLA, capacity_)
  return expert_BLA, slot_BLA, gate_BLA


def load_balancing_loss(probs_BLE, expert_BLA, mask_BL=None):
  """E * sum_e f_e * P_e over unpadded tokens, f_e from first choices (see module docstring)."""
  b, l, e = probs_BLE.shape
  m_BL = jnp.ones((b, l), jnp.float32) if mask_BL is None else mask_BL.astype(jnp.float32)
  count = jnp.maximum(jnp.sum(m_BL), 1.0)
  first_BLE = jax.nn.one_hot(expert_BLA[..., 0], e, dtype=jnp.float32)
  f_E = jnp.sum(first_BLE * m_BL[:, :, None], axis=(0, 1)) / count
  p_E = jnp.sum(probs_BLE.astype(jnp.float32) * m_BL[:, :, None], axis=(0, 1)) / count
  return e * jnp.sum(f_E * p_E)


class MoEFeedForward(nn.Module):
  """x_BLD -> y_BLD; each expert is a gelu feed-forward Dense(F) -> Dense(D)."""
  num_experts: int  # E
  d_ff: int  # F, hidden size of each expert
  top_k: int = 1  # experts per token
  capacity_factor: float = 1.25  # expert capacity relative to a perfectly even split
  aux_weight: float = 0.01  # multiplies the load-balancing loss before it is sown
  dropout_rate: float = 0.0  # dropout on the expert hidden activations
  dtype: Any = jnp.float32  # compute dtype (the router always runs in float32)
  param_dtype: Any = jnp.float32  # parameter dtype
  init_scheme: str = initializers.DEFAULT  # the experts' (initializers.SCHEMES); router: Switch's

  @nn.compact
  def __call__(self, x_BLD, mask_BL=None, *, deterministic=True):
    b, l, d = x_BLD.shape
    e, f, k = self.num_experts, self.d_ff, self.top_k
    if e < 1 or not 1 <= k <= e:
      raise ValueError(f"need num_experts >= 1 and 1 <= top_k <= num_experts; got "
                       f"num_experts={e}, top_k={k}")
    if self.capacity_factor <= 0:
      raise ValueError(f"capacity_factor must be > 0; got {self.capacity_factor}")
    cap = capacity(b * l, e, k, self.capacity_factor)

    # Router in float32: small logit differences decide the routing (Switch, section 2.4).
    router_DE = self.param("router", nn.initializers.normal(stddev=0.02), (d, e), self.param_dtype)
    logits_BLE = jnp.einsum("bld,de->ble", x_BLD.astype(jnp.float32),
                            router_DE.astype(jnp.float32))
    probs_BLE = jax.nn.softmax(logits_BLE, axis=-1)
    limit = None
    if mask_BL is not None:  # the unpadded tokens' capacity: a padded batch routes as unpadded
      limit = traced_capacity(jnp.sum(mask_BL.astype(jnp.int32)), e, k, self.capacity_factor)
    expert_BLA, slot_BLA, gate_BLA = route(probs_BLE, k, cap, mask_BL, limit)
    self.sow("losses", "moe_aux_loss",
             self.aux_weight * load_balancing_loss(probs_BLE, expert_BLA, mask_BL))

    # Dispatch by scatter into [E, capacity, D] buffers; dropped choices point at slot == cap and
    # are discarded (mode="drop"), so memory stays linear in the token count.
    x_BLAD = jnp.broadcast_to(x_BLD[:, :, None, :], (b, l, k, d)).astype(self.dtype)
    x_EXD = jnp.zeros((e, cap, d), self.dtype).at[expert_BLA, slot_BLA].add(x_BLAD, mode="drop")

    # Each expert is a pair of dense projections: under "torch" nn.Linear's, per expert.
    if self.init_scheme == "torch":
      wi_init, bi_init = initializers.kernel("torch", d), initializers.bias("torch", d)
      wo_init, bo_init = initializers.kernel("torch", f), initializers.bias("torch", f)
    else:
      wi_init = wo_init = nn.initializers.variance_scaling(
          1.0, "fan_in", "truncated_normal", in_axis=-2, out_axis=-1, batch_axis=(0,))
      bi_init = bo_init = nn.initializers.zeros
    wi_EDF = self.param("wi", wi_init, (e, d, f), self.param_dtype).astype(self.dtype)
    bi_EF = self.param("bi", bi_init, (e, f), self.param_dtype).astype(self.dtype)
    wo_EFD = self.param("wo", wo_init, (e, f, d), self.param_dtype).astype(self.dtype)
    bo_ED = self.param("bo", bo_init, (e, d), self.param_dtype).astype(self.dtype)
    h_EXF = nn.gelu(jnp.einsum("ecd,edf->ecf", x_EXD, wi_EDF) + bi_EF[:, None, :])
    h_EXF = nn.Dropout(self.dropout_rate)(h_EXF, deterministic=deterministic)
    out_EXD = jnp.einsum("ecf,efd->ecd", h_EXF, wo_EFD) + bo_ED[:, None, :]

    # Combine by gather; a dropped choice reads the fill value 0.
    out_BLAD = out_EXD.at[expert_BLA, slot_BLA].get(mode="fill", fill_value=0)
    y_BLD = jnp.sum(out_BLAD * gate_BLA[..., None].astype(self.dtype), axis=2)
    return y_BLD.astype(self.dtype)
