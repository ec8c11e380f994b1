"""Multi-head attention (Linen): self/cross, grouped-query heads, RoPE/ALiBi, an explicit state.

Parameters follow ``flax.linen.MultiHeadDotProductAttention`` (``query``/``key``/``value`` kernels
[D, heads, K], ``out`` kernel [N, K, D]), except that key and value have G = num_kv_heads heads.
Query head n reads key/value head n // (N // G), the grouping of
``dot_product.dot_product_attention``.

A mixer (the contract in attnlab/models/__init__.py)::

  y_BLD, state = mha(x_BLD, lengths_B=None, state=None, *, deterministic=True,
                     context_BSD=None, context_lengths_B=None)

- Bidirectional self-attention (causal=False): lengths_B masks the padded keys; the state is None.
- Causal self-attention: the state is a ``KeyValueState``, every key (RoPE applied) and value seen,
  which slots hold a token (not the padding of an earlier call) and each sequence's count of tokens.
  A call with a state appends to it (L more slots: under jit each state length compiles once), so
  x[:, :k] then x[:, k:] equals one call on x. A token's position (RoPE, ALiBi, the window) is the
  count of valid tokens before it in its own sequence: after a padded call each sequence continues
  at its own length. With a window the state keeps only each sequence's last window - 1 tokens
  (all that a later query sees), so it stops growing.
- Cross-attention (``context_BSD``; ``context_lengths_B`` its padding): the state is a
  ``ContextState``, the context's keys and values projected once, on the first call; later calls
  pass it back and need no context (it is not read).

Without a state (training) the kernel call is the plain one: causal flag and window as the
``dot_product`` implementations take them, positions ``arange(L)``. With a state the keys and
queries sit at per-sequence positions, so the attention takes an explicit [B, 1, L, S] mask (and an
ALiBi bias [B, N, L, S]) in whichever implementation is chosen.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from attnlab.models import initializers
from attnlab.models import masks
from attnlab.models.attention import dot_product
from attnlab.models.attention import positions as pos_lib


# Causal ALiBi with more bias entries than this uses the row-shifted [1, N, 1, S] form (same
# weights, linear memory); below it the paper's exact [1, N, L, S] bias.
ALIBI_FULL_MAX = 1 << 22


class KeyValueState(NamedTuple):
  """Causal self-attention's decoding state; S slots (with a window at most window - 1)."""
  key_BSGK: Any  # keys, RoPE applied at their positions (compute dtype)
  value_BSGK: Any  # values
  valid_BS: Any  # bool: the slot holds a token (False: padding of an earlier call, an empty slot)
  length_B: Any  # int32: tokens seen per sequence, the position of its next token


class ContextState(NamedTuple):
  """Cross-attention's decoding state: the context's keys and values, projected once."""
  key_BSGK: Any
  value_BSGK: Any
  valid_BS: Any  # bool: a context token (before context_lengths_B), not padding


def check_heads(d_model: int, num_heads: int, num_kv_heads: int) -> None:
  if num_heads < 1 or d_model % num_heads:
    raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
  if num_kv_heads < 1 or num_heads % num_kv_heads:
    raise ValueError(f"num_heads={num_heads} is not divisible by num_kv_heads={num_kv_heads}")


def check_implementation(name) -> None:
  if name not in (None,) + tuple(dot_product.IMPLEMENTATIONS):
    raise ValueError(f"attention_impl={name!r} is not an attention implementation; "
                     f"allowed: {tuple(dot_product.IMPLEMENTATIONS)} or None for the default")


def check_lengths(name: str, lengths_B, batch: int) -> None:
  if lengths_B is not None and tuple(jnp.shape(lengths_B)) != (batch,):
    raise ValueError(f"{name} must have shape ({batch},) (one length per sequence); "
                     f"got {tuple(jnp.shape(lengths_B))}")


def check_state(state, batch: int, heads: int, head_dim: int) -> None:
  """ValueError unless the state's arrays have the shapes of a [batch, S, heads, head_dim] state."""
  kv = (batch, state.key_BSGK.shape[1], heads, head_dim)
  want = {"key_BSGK": kv, "value_BSGK": kv, "valid_BS": kv[:2]}
  if isinstance(state, KeyValueState):
    want["length_B"] = (batch,)
  got = {name: tuple(jnp.shape(getattr(state, name))) for name in want}
  if got != want:
    raise ValueError(f"{type(state).__name__} shapes {got}; this layer's are {want} "
                     "(batch, slots, key/value heads, head dim)")


def slot_positions(valid_BS, length_B):
  """int32[B, S]: the position of the token in each valid slot (valid slots hold a sequence's
  tokens in order, the last at length - 1; other slots get a number never read)."""
  at_or_after_BS = jnp.cumsum(valid_BS[:, ::-1].astype(jnp.int32), axis=1)[:, ::-1]
  return length_B[:, None] - at_or_after_BS


def keep_last(state: KeyValueState, slots: int) -> KeyValueState:
  """Each sequence's last ``slots`` tokens, right-aligned in ``slots`` slots (empty ones first)."""
  b = state.valid_BS.shape[0]
  first_B1 = (state.length_B - slots)[:, None]  # position of the first token kept
  pos_BS = slot_positions(state.valid_BS, state.length_B)
  keep_BS = jnp.logical_and(state.valid_BS, pos_BS >= first_B1)
  slot_BS = jnp.where(keep_BS, pos_BS - first_B1, slots)  # slots: out of range, dropped
  rows_B1 = jnp.arange(b)[:, None]

  def put(x):
    empty = jnp.zeros((b, slots) + x.shape[2:], x.dtype)
    return empty.at[rows_B1, slot_BS].set(x, mode="drop")
  return KeyValueState(put(state.key_BSGK), put(state.value_BSGK), put(keep_BS), state.length_B)


def _zero_padding(x_BLGK, valid_BL):
  """Padded tokens' keys or values as zeros, so that a state does not depend on the padding."""
  return x_BLGK if valid_BL is None else jnp.where(valid_BL[:, :, None, None], x_BLGK, 0)


def first_state(k_BLGK, v_BLGK, lengths_B, window) -> KeyValueState:
  """The state after a first call (positions 0 .. L-1; right padding past each length, zeroed)."""
  b, l = k_BLGK.shape[:2]
  if lengths_B is None:
    state = KeyValueState(k_BLGK, v_BLGK, jnp.ones((b, l), bool), jnp.full((b,), l, jnp.int32))
  else:
    valid_BL = masks.valid_BL(lengths_B, l)
    state = KeyValueState(_zero_padding(k_BLGK, valid_BL), _zero_padding(v_BLGK, valid_BL),
                          valid_BL, lengths_B.astype(jnp.int32))
  return state if window is None else keep_last(state, min(l, window - 1))


class MultiHeadAttention(nn.Module):
  """A mixer: (x_BLD, lengths_B, state) -> (y_BLD, state); cross-attention with context_BSD."""
  num_heads: int  # N query heads; head dim K = D // N
  num_kv_heads: int | None = None  # G key/value heads (None: N; 1: multi-query attention)
  causal: bool = False  # query i sees keys j <= i only
  window: int | None = None  # sliding window (needs causal): query i sees keys i - window < j <= i
  dropout_rate: float = 0.0  # dropout on the attention weights
  position: str = "none"  # "rope"/"alibi" act here (self-attention only); the others are ignored
  rope_base: float = 10000.0  # RoPE wavelength base
  # The kernel (the contract's ``impl`` of other mixers): a dot_product.IMPLEMENTATIONS name, or
  # None for the backend's default.
  attention_impl: str | None = None
  capture_weights: bool = False  # sow weights_BNLS into "intermediates" (uses naive attention)
  use_bias: bool = True  # biases in the projections
  dtype: Any = jnp.float32  # compute dtype
  param_dtype: Any = jnp.float32  # parameter dtype
  init_scheme: str = initializers.DEFAULT  # the projections' (initializers.SCHEMES)

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, state=None, *, deterministic=True, context_BSD=None,
               context_lengths_B=None):
    """Cross-attention when ``context_BSD`` is given (first call) or ``state`` is a ContextState."""
    b, l, d = x_BLD.shape
    n = self.num_heads
    g = self.num_kv_heads or n
    cross = context_BSD is not None or isinstance(state, ContextState)
    self._check_call(x_BLD, lengths_B, state, context_BSD, context_lengths_B, cross)
    kd = d // n

    # PyTorch fuses the three input projections into one [N K + 2 G K, D] matrix (3D rows for
    # multi-head attention); its Xavier bound is that matrix's.
    inputs = initializers.attention_input(self.init_scheme, d, (n + 2 * g) * kd)
    dense = lambda heads, name: nn.DenseGeneral(
        (heads, kd), use_bias=self.use_bias, dtype=self.dtype, param_dtype=self.param_dtype,
        name=name, **inputs)
    q_BLNK = dense(n, "query")(x_BLD)
    key, value = dense(g, "key"), dense(g, "value")
    attend = functools.partial(self._attend, deterministic=deterministic)

    if cross:
      if state is None:
        s = context_BSD.shape[1]
        valid_BS = masks.valid_BL(context_lengths_B, s)
        mask = None if valid_BS is None else valid_BS[:, None, None, :]
        state = ContextState(key(context_BSD), value(context_BSD),
                             jnp.ones((b, s), bool) if valid_BS is None else valid_BS)
      else:
        mask = state.valid_BS[:, None, None, :]
      out_BLNK = attend(q_BLNK, state.key_BSGK, state.value_BSGK, mask=mask, bias=None,
                        causal=self.causal, window=None)
    elif state is None:
      k_BLGK, v_BLGK = key(x_BLD), value(x_BLD)
      pos_L = jnp.arange(l)
      if self.position == "rope":
        q_BLNK = pos_lib.rope(q_BLNK, pos_L, self.rope_base)
        k_BLGK = pos_lib.rope(k_BLGK, pos_L, self.rope_base)
      bias = None
      if self.position == "alibi":
        if self.causal and n * l * l > ALIBI_FULL_MAX:
          bias = pos_lib.alibi_causal_bias(n, pos_L)
        else:
          bias = pos_lib.alibi_bias(n, pos_L, pos_L)
      # Causal attention needs no mask for right padding: a valid query sees valid keys only.
      valid_BL = None if self.causal else masks.valid_BL(lengths_B, l)
      out_BLNK = attend(q_BLNK, k_BLGK, v_BLGK, mask=None if valid_BL is None else
                        valid_BL[:, None, None, :], bias=bias, causal=self.causal,
                        window=self.window)
      state = first_state(k_BLGK, v_BLGK, lengths_B, self.window) if self.causal else None
    else:
      out_BLNK, state = self._continue(q_BLNK, key(x_BLD), value(x_BLD), lengths_B, state, attend)
    y_BLD = nn.DenseGeneral(d, axis=(-2, -1), use_bias=self.use_bias, dtype=self.dtype,
                            param_dtype=self.param_dtype, name="out",
                            **initializers.attention_output(self.init_scheme, n * kd))(out_BLNK)
    return y_BLD, state

  def _continue(self, q_BLNK, k_BLGK, v_BLGK, lengths_B, state, attend):
    """Causal self-attention after ``state``: -> (out_BLNK, the state with this call appended)."""
    b, l = q_BLNK.shape[:2]
    valid_BL = masks.valid_BL(lengths_B, l)
    q_pos_BL = state.length_B[:, None] + jnp.arange(l)[None, :]
    if self.position == "rope":
      q_BLNK = pos_lib.rope(q_BLNK, q_pos_BL, self.rope_base)
      k_BLGK = pos_lib.rope(k_BLGK, q_pos_BL, self.rope_base)
    k_pos_BS = jnp.concatenate([slot_positions(state.valid_BS, state.length_B), q_pos_BL], axis=1)
    state = KeyValueState(
        jnp.concatenate([state.key_BSGK, _zero_padding(k_BLGK, valid_BL).astype(
            state.key_BSGK.dtype)], axis=1),
        jnp.concatenate([state.value_BSGK, _zero_padding(v_BLGK, valid_BL).astype(
            state.value_BSGK.dtype)], axis=1),
        jnp.concatenate([state.valid_BS, jnp.ones((b, l), bool) if valid_BL is None else valid_BL],
                        axis=1),
        state.length_B + (l if lengths_B is None else lengths_B.astype(jnp.int32)))
    q_BL1, k_B1S = q_pos_BL[:, :, None], k_pos_BS[:, None, :]
    seen_BLS = jnp.logical_and(state.valid_BS[:, None, :], k_B1S <= q_BL1)
    if self.window is not None:
      seen_BLS = jnp.logical_and(seen_BLS, k_B1S > q_BL1 - self.window)
    bias = pos_lib.alibi_bias(self.num_heads, q_pos_BL, k_pos_BS) if (
        self.position == "alibi") else None
    out_BLNK = attend(q_BLNK, state.key_BSGK, state.value_BSGK, mask=seen_BLS[:, None], bias=bias,
                      causal=False, window=None)
    if self.window is not None:
      state = keep_last(state, min(state.valid_BS.shape[1], self.window - 1))
    return out_BLNK, state

  def _attend(self, q_BLNK, k_BSGK, v_BSGK, *, mask, bias, causal, window, deterministic):
    rate = 0.0 if deterministic else self.dropout_rate
    rng = self.make_rng("dropout") if rate > 0.0 else None
    if self.capture_weights:
      out_BLNK, weights_BNLS = dot_product.dot_product_attention(
          q_BLNK, k_BSGK, v_BSGK, mask=mask, bias=bias, causal=causal, dropout_rate=rate,
          dropout_rng=rng, window=window, return_weights=True, implementation="naive")
      self.sow("intermediates", "attention_weights", weights_BNLS)
      return out_BLNK
    return dot_product.dot_product_attention(
        q_BLNK, k_BSGK, v_BSGK, mask=mask, bias=bias, causal=causal, dropout_rate=rate,
        dropout_rng=rng, window=window, implementation=self.attention_impl)

  def _check_call(self, x_BLD, lengths_B, state, context_BSD, context_lengths_B, cross):
    """ValueError naming the field, on static shapes and fields only (before compiling)."""
    b, _, d = x_BLD.shape
    n = self.num_heads
    g = self.num_kv_heads or n
    check_heads(d, n, g)
    check_implementation(self.attention_impl)
    pos_lib.check_position(self.position)
    if cross and self.window is not None:
      raise ValueError(f"window={self.window} is for causal self-attention; cross-attention "
                       "attends to the whole context (use window=None)")
    dot_product.check_window(self.window, self.causal)
    if self.position == "rope" and (d // n) % 2:
      raise ValueError(f"rope needs an even head dimension; got d_model/num_heads = {d // n}")
    check_lengths("lengths_B", lengths_B, b)
    if context_lengths_B is not None and context_BSD is None:
      raise ValueError("context_lengths_B is the padding of context_BSD: pass it with the context "
                       "on the first cross-attention call (later calls read it from the state)")
    check_lengths("context_lengths_B", context_lengths_B, b)
    if context_BSD is not None and (context_BSD.ndim != 3 or context_BSD.shape[0] != b):
      raise ValueError(f"context_BSD must have shape ({b}, S, features); got "
                       f"{tuple(context_BSD.shape)}")
    if state is None:
      return
    if cross and not isinstance(state, ContextState):
      raise ValueError(f"cross-attention (context_BSD given) takes state=None on its first call, "
                       f"then the ContextState it returned; got {type(state).__name__}")
    if not cross and not self.causal:
      raise ValueError("bidirectional self-attention (causal=False) has no decoding state: "
                       "pass state=None")
    if not cross and not isinstance(state, KeyValueState):
      raise ValueError(f"causal self-attention takes state=None or the KeyValueState it "
                       f"returned; got {type(state).__name__}")
    check_state(state, b, g, d // n)

  def state_size(self, d_model: int, length: int) -> int | None:
    """Floats per sequence of the decoding state after ``length`` tokens (None: bidirectional).

    Keys and values of every token, or with a window of the last window - 1.
    """
    if not self.causal:
      return None
    slots = length if self.window is None else min(length, self.window - 1)
    return 2 * slots * (self.num_kv_heads or self.num_heads) * (d_model // self.num_heads)
