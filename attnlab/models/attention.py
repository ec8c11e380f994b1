"""Scaled dot-product attention: one signature, several implementations selectable by name.

  softmax(q k^T / sqrt(K) + bias, masked) v

q_BLNK: queries; k_BSGK, v_BSGK: keys and values with G key/value heads (G divides N; grouped-query
attention repeats each key/value head N // G times). ``mask`` is boolean, True = may attend, and must
broadcast to [B, N, L, S]; ``bias`` is additive and broadcasts the same way.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

IMPLEMENTATIONS = ("naive",)  # extended by the attention issue: xla, chunked, cudnn


def _check(q_BLNK, k_BSGK, v_BSGK):
  if q_BLNK.ndim != 4 or k_BSGK.ndim != 4 or v_BSGK.ndim != 4:
    raise ValueError(
        f"q, k, v must be rank 4 [batch, length, heads, head_dim]; got shapes "
        f"{q_BLNK.shape}, {k_BSGK.shape}, {v_BSGK.shape}")
  if k_BSGK.shape != v_BSGK.shape:
    raise ValueError(f"k and v shapes differ: {k_BSGK.shape} vs {v_BSGK.shape}")
  n, g = q_BLNK.shape[2], k_BSGK.shape[2]
  if n % g:
    raise ValueError(f"query heads ({n}) must be divisible by key/value heads ({g})")


def naive_attention(q_BLNK, k_BSGK, v_BSGK, *, mask=None, bias=None, causal=False,
                    dropout_rate=0.0, dropout_rng=None, return_weights=False):
  """The reference: plain einsum and softmax in float32. Returns out_BLNK (and weights_BNLS)."""
  _check(q_BLNK, k_BSGK, v_BSGK)
  b, l, n, kd = q_BLNK.shape
  s, g = k_BSGK.shape[1], k_BSGK.shape[2]
  q_BLGRK = q_BLNK.reshape(b, l, g, n // g, kd)
  logits_BGRLS = jnp.einsum("blgrk,bsgk->bgrls", q_BLGRK, k_BSGK,
                            preferred_element_type=jnp.float32) / jnp.sqrt(kd).astype(jnp.float32)
  logits_BNLS = logits_BGRLS.reshape(b, n, l, s)
  if bias is not None:
    logits_BNLS = logits_BNLS + bias.astype(jnp.float32)
  allowed = jnp.ones((1, 1, l, s), bool)
  if mask is not None:
    allowed = jnp.logical_and(allowed, mask)
  if causal:
    # Query i sits at absolute position i + (s - l): with a key/value cache the queries are the last l.
    allowed = jnp.logical_and(allowed, jnp.tril(jnp.ones((l, s), bool), k=s - l)[None, None])
  logits_BNLS = jnp.where(allowed, logits_BNLS, jnp.finfo(jnp.float32).min)
  weights_BNLS = jax.nn.softmax(logits_BNLS, axis=-1)
  # Rows with no allowed key (fully padded queries) give zeros, not a uniform average.
  weights_BNLS = jnp.where(jnp.any(allowed, axis=-1, keepdims=True), weights_BNLS, 0.0)
  used_BNLS = weights_BNLS
  if dropout_rate > 0.0:
    keep = jax.random.bernoulli(dropout_rng, 1.0 - dropout_rate, weights_BNLS.shape)
    used_BNLS = jnp.where(keep, weights_BNLS / (1.0 - dropout_rate), 0.0)
  used_BGRLS = used_BNLS.reshape(b, g, n // g, l, s).astype(v_BSGK.dtype)
  out_BLGRK = jnp.einsum("bgrls,bsgk->blgrk", used_BGRLS, v_BSGK)
  out_BLNK = out_BLGRK.reshape(b, l, n, kd).astype(q_BLNK.dtype)
  return (out_BLNK, weights_BNLS) if return_weights else out_BLNK


def dot_product_attention(q_BLNK, k_BSGK, v_BSGK, *, mask=None, bias=None, causal=False,
                          dropout_rate=0.0, dropout_rng=None, return_weights=False,
                          implementation=None):
  """Dispatches to an implementation by name (None: the default for the backend and shapes)."""
  if implementation not in (None,) + IMPLEMENTATIONS:
    raise ValueError(f"unknown attention implementation {implementation!r}; "
                     f"allowed: {IMPLEMENTATIONS} or None for the default")
  return naive_attention(q_BLNK, k_BSGK, v_BSGK, mask=mask, bias=bias, causal=causal,
                         dropout_rate=dropout_rate, dropout_rng=dropout_rng,
                         return_weights=return_weights)
