"""Multi-head attention (Linen): self/cross, grouped-query heads, RoPE/ALiBi, key/value cache.

Parameters follow ``flax.linen.MultiHeadDotProductAttention`` (``query``/``key``/``value`` kernels
[D, heads, K], ``out`` kernel [N, K, D]), except that key and value have G = num_kv_heads heads.
Query head n reads key/value head n // (N // G), the grouping of
``dot_product.dot_product_attention``.

Decoding (``decode=True``) follows the Flax pattern: ``init`` with a full-length input creates the
"cache" collection (cached_key, cached_value of that length, cache_index); each later ``apply`` with
``mutable=["cache"]`` writes the new keys/values at cache_index and attends to everything up to
there (with a ``window``, to the last ``window`` positions). RoPE and ALiBi use the absolute
positions cache_index + arange(L).

Cross-attention with ``decode=True``: the first call (an ``apply`` with the trained parameters and
``mutable=["cache"]``) computes the keys and values of ``context_BSD`` and caches them
(cached_key, cached_value; no index); later calls read them and never project the context again,
so ``context_BSD`` then only has to have the same shape (pass the same memory). The mask is not
cached: pass it on every call.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from attnlab.models import initializers
from attnlab.models.attention import dot_product
from attnlab.models.attention import positions as pos_lib


# Causal ALiBi with more bias entries than this uses the row-shifted [1, N, 1, S] form (same
# weights, linear memory); below it the paper's exact [1, N, L, S] bias.
ALIBI_FULL_MAX = 1 << 22


def check_mask(mask, shape_BNLS) -> None:
  """A mask must be rank 4 and broadcast to [B, N, L, S]."""
  if mask is None:
    return
  ok = mask.ndim == 4 and all(m in (1, t) for m, t in zip(mask.shape, shape_BNLS))
  if not ok:
    raise ValueError(f"attention mask of shape {tuple(mask.shape)} does not broadcast to "
                     f"[batch, heads, queries, keys] = {tuple(shape_BNLS)}")


def check_heads(d_model: int, num_heads: int, num_kv_heads: int) -> None:
  if num_heads < 1 or d_model % num_heads:
    raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
  if num_kv_heads < 1 or num_heads % num_kv_heads:
    raise ValueError(f"num_heads={num_heads} is not divisible by num_kv_heads={num_kv_heads}")


def check_implementation(name) -> None:
  if name not in (None,) + tuple(dot_product.IMPLEMENTATIONS):
    raise ValueError(f"unknown attention implementation {name!r}; "
                     f"allowed: {tuple(dot_product.IMPLEMENTATIONS)} or None for the default")


class MultiHeadAttention(nn.Module):
  """x_BLD (and context_BSD for cross-attention) -> y_BLD."""
  num_heads: int  # N query heads; head dim K = D // N
  num_kv_heads: int | None = None  # G key/value heads (None: N; 1: multi-query attention)
  causal: bool = False  # query i sees keys j <= i only
  window: int | None = None  # sliding window (needs causal): query i sees keys i - window < j <= i
  dropout_rate: float = 0.0  # dropout on the attention weights
  position: str = "none"  # "rope"/"alibi" act here (self-attention only); the others are ignored
  rope_base: float = 10000.0  # RoPE wavelength base
  implementation: str | None = None  # dot_product.IMPLEMENTATIONS name, None: backend default
  capture_weights: bool = False  # sow weights_BNLS into "intermediates" (uses naive attention)
  use_bias: bool = True  # biases in the projections
  dtype: Any = jnp.float32  # compute dtype
  param_dtype: Any = jnp.float32  # parameter dtype
  init_scheme: str = initializers.DEFAULT  # the projections' (initializers.SCHEMES)

  @nn.compact
  def __call__(self, x_BLD, context_BSD=None, mask=None, *, deterministic=True, decode=False):
    """mask: bool, True = may attend, rank 4, broadcasting to [B, N, L, S] (S: the cache in decode).

    decode=True is always causal for self-attention: a query at cache_index + i sees cached
    positions <= it (and > it - window with a window).
    """
    b, l, d = x_BLD.shape
    n = self.num_heads
    g = self.num_kv_heads or n
    check_heads(d, n, g)
    check_implementation(self.implementation)
    pos_lib.check_position(self.position)
    cross = context_BSD is not None
    if cross and self.window is not None:
      raise ValueError(f"window={self.window} is for causal self-attention; cross-attention "
                       "attends to the whole context (use window=None)")
    dot_product.check_window(self.window, self.causal or decode)
    kd = d // n
    if self.position == "rope" and kd % 2:
      raise ValueError(f"rope needs an even head dimension; got d_model/num_heads = {kd}")
    relative = None if cross else self.position

    # PyTorch fuses the three input projections into one [N K + 2 G K, D] matrix (3D rows for
    # multi-head attention); its Xavier bound is that matrix's.
    inputs = initializers.attention_input(self.init_scheme, d, (n + 2 * g) * kd)
    dense = lambda heads, name: nn.DenseGeneral(
        (heads, kd), use_bias=self.use_bias, dtype=self.dtype, param_dtype=self.param_dtype,
        name=name, **inputs)
    kv_BSD = context_BSD if cross else x_BLD
    q_BLNK = dense(n, "query")(x_BLD)
    key, value = dense(g, "key"), dense(g, "value")
    if cross and decode:
      k_BSGK, v_BSGK = self._cached_context(kv_BSD, key, value)
    else:
      k_BSGK, v_BSGK = key(kv_BSD), value(kv_BSD)

    q_pos_L = jnp.arange(l)
    causal = self.causal or (decode and not cross)
    window = self.window
    if decode and not cross:
      k_BSGK, v_BSGK, q_pos_L, causal_11LS = self._update_cache(k_BSGK, v_BSGK, relative)
      if causal_11LS is not None:
        # The cached keys are positions 0 .. S-1 and the queries sit at cache_index + arange(L).
        causal, window = False, None
        mask = causal_11LS if mask is None else jnp.logical_and(mask, causal_11LS)
    elif relative == "rope":
      k_BSGK = pos_lib.rope(k_BSGK, jnp.arange(k_BSGK.shape[1]), self.rope_base)
    s = k_BSGK.shape[1]
    check_mask(mask, (b, n, l, s))

    if relative == "rope":
      q_BLNK = pos_lib.rope(q_BLNK, q_pos_L, self.rope_base)
    bias = None
    if relative == "alibi":
      if (causal or decode) and n * l * s > ALIBI_FULL_MAX:
        bias = pos_lib.alibi_causal_bias(n, jnp.arange(s))
      else:
        bias = pos_lib.alibi_bias(n, q_pos_L, jnp.arange(s))

    rate = 0.0 if deterministic else self.dropout_rate
    rng = self.make_rng("dropout") if rate > 0.0 else None
    if self.capture_weights:
      out_BLNK, weights_BNLS = dot_product.dot_product_attention(
          q_BLNK, k_BSGK, v_BSGK, mask=mask, bias=bias, causal=causal, dropout_rate=rate,
          dropout_rng=rng, window=window, return_weights=True, implementation="naive")
      self.sow("intermediates", "attention_weights", weights_BNLS)
    else:
      out_BLNK = dot_product.dot_product_attention(
          q_BLNK, k_BSGK, v_BSGK, mask=mask, bias=bias, causal=causal, dropout_rate=rate,
          dropout_rng=rng, window=window, implementation=self.implementation)
    return nn.DenseGeneral(d, axis=(-2, -1), use_bias=self.use_bias, dtype=self.dtype,
                           param_dtype=self.param_dtype, name="out",
                           **initializers.attention_output(self.init_scheme, n * kd))(out_BLNK)

  def _update_cache(self, k_BLGK, v_BLGK, relative):
    """Writes keys/values at cache_index; -> cached k, v, query positions, causal mask_11LS.

    The index is traced, so overflowing the cache cannot be checked here: dynamic_update_slice
    clamps.
    """
    initialized = self.has_variable("cache", "cached_key")
    cached_key = self.variable("cache", "cached_key", jnp.zeros, k_BLGK.shape, k_BLGK.dtype)
    cached_value = self.variable("cache", "cached_value", jnp.zeros, v_BLGK.shape, v_BLGK.dtype)
    cache_index = self.variable("cache", "cache_index", lambda: jnp.array(0, jnp.int32))
    l = k_BLGK.shape[1]
    if not initialized:
      # The init call only creates the cache (its length = this input's length) and runs the plain
      # causal pass.
      if relative == "rope":
        k_BLGK = pos_lib.rope(k_BLGK, jnp.arange(l), self.rope_base)
      return k_BLGK, v_BLGK, jnp.arange(l), None
    s = cached_key.value.shape[1]
    if l > s:
      raise ValueError(f"decoding {l} tokens at once but the cache holds only {s} positions")
    index = cache_index.value
    q_pos_L = index + jnp.arange(l)
    if relative == "rope":
      k_BLGK = pos_lib.rope(k_BLGK, q_pos_L, self.rope_base)
    cached_key.value = jax.lax.dynamic_update_slice(cached_key.value, k_BLGK, (0, index, 0, 0))
    cached_value.value = jax.lax.dynamic_update_slice(cached_value.value, v_BLGK, (0, index, 0, 0))
    cache_index.value = index + l
    k_pos_1S, q_pos_L1 = jnp.arange(s)[None, :], q_pos_L[:, None]
    causal_LS = k_pos_1S <= q_pos_L1
    if self.window is not None:
      causal_LS = jnp.logical_and(causal_LS, k_pos_1S > q_pos_L1 - self.window)
    return cached_key.value, cached_value.value, q_pos_L, causal_LS[None, None]

  def _cached_context(self, context_BSD, key, value):
    """Cross-attention keys/values: projected from the context on the first decode call, then
    read from the cache."""
    if self.has_variable("cache", "cached_key"):
      k_BSGK = self.get_variable("cache", "cached_key")
      v_BSGK = self.get_variable("cache", "cached_value")
      if k_BSGK.shape[:2] != context_BSD.shape[:2]:
        raise ValueError(f"context of shape {tuple(context_BSD.shape)} but the cached "
                         f"cross-attention keys are for [batch, length] = {k_BSGK.shape[:2]}")
      return k_BSGK, v_BSGK
    k_BSGK, v_BSGK = key(context_BSD), value(context_BSD)
    self.put_variable("cache", "cached_key", k_BSGK)
    self.put_variable("cache", "cached_value", v_BSGK)
    return k_BSGK, v_BSGK
