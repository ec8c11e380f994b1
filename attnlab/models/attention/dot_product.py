"""Scaled dot-product attention: one signature, several implementations selectable by name.

  softmax(q k^T / sqrt(K) + bias, masked) v

q_BLNK: queries; k_BSGK, v_BSGK: keys and values with G key/value heads (G divides N; grouped-query
attention repeats each key/value head N // G times). ``mask`` is boolean, True = may attend, and must
broadcast to [B, N, L, S]; ``bias`` is additive and broadcasts the same way. With ``causal`` query i
sits at absolute position i + (S - L) (the last L of S positions, as when decoding with a cache).
``window`` (with ``causal``) is sliding-window attention: query i sees only the last ``window``
positions up to its own, keys j with i + (S - L) - window < j <= i + (S - L).
Rows with no allowed key give zero weights and a zero output in every implementation.

Implementations (``IMPLEMENTATIONS``):
  naive    the reference: einsum, float32 softmax, O(L S) memory. Everything is supported; the
           window is a band mask.
  xla      ``jax.nn.dot_product_attention(implementation="xla")``. No dropout, no returned weights
           (ValueError: use naive or chunked). Causal with L != S becomes an explicit mask; a window
           is jax's ``local_window_size`` when L = S, else part of that mask.
  chunked  memory-efficient attention (``chunked.py``), O(L + S) memory forward and backward,
           causal blocks skipped; with a window also the key blocks before it (time linear in L).
           Dropout supported (its own per-block random stream, so its masks differ from naive's).
           With ``return_weights=True`` it runs naive instead: the weights are [B, N, L, S] anyway.
  cudnn    ``jax.nn.dot_product_attention(implementation="cudnn")``: GPU only (ValueError naming the
           backend elsewhere); cuDNN itself rejects unsupported dtypes/shapes (e.g. float32). A
           window as for xla (cuDNN's sliding window when L = S).

Default (``implementation=None``), from measurements (see ``scripts/benchmarks/attention.py``):
  return_weights         -> naive (the only one returning weights directly);
  GPU                    -> cudnn for float16/bfloat16, head dim <= 128 and a multiple of 8, no
                            dropout; otherwise xla without dropout, else chunked (not measured here);
  CPU (and other)        -> naive when L * S <= _NAIVE_MAX_LS, chunked beyond.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from attnlab.models.attention import chunked

IMPLEMENTATIONS = ("naive", "xla", "chunked", "cudnn")

# On CPU naive is faster only while the whole [B, N, L, S] logits stay small: forward+backward,
# chunked took 0.83-0.88x naive's CPU time from 2^19 logits (4 x 8 x 128^2 with head dim 64,
# 32 x 4 x 64^2, 8 x 4 x 128^2 causal) and 0.60x at 64 x 4 x 128^2 causal (the MQAR decoder),
# but 1.1-1.7x at 2^17 (4 x 8 x 64^2) and 1.25x at 128 x 4 x 20^2; at 2^18 the two tied.
_NAIVE_MAX_LOGITS = 2**18


def _check_broadcast(name, x, target):
  shape = tuple(np.shape(x))
  if len(shape) > 4 or any(d not in (1, t) for d, t in zip(shape[::-1], target[::-1])):
    raise ValueError(f"{name} of shape {shape} does not broadcast to [B, N, L, S] = {target}")


def check_window(window, causal: bool = True) -> None:
  """A window is an int >= 1 and needs causal attention (None: full attention)."""
  if window is None:
    return
  if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
    raise ValueError(f"window={window!r}; must be an int >= 1 (the positions each query sees, its "
                     "own included) or None for full attention")
  if not causal:
    raise ValueError(f"window={window} needs causal=True: a query sees the last `window` "
                     "positions up to its own")


def validate(q_BLNK, k_BSGK, v_BSGK, *, mask=None, bias=None, causal=False, dropout_rate=0.0,
             dropout_rng=None, window=None, implementation=None):
  """Raises ValueError naming the problem, on static shapes only (before any compilation)."""
  if implementation not in (None,) + IMPLEMENTATIONS:
    raise ValueError(f"unknown attention implementation {implementation!r}; "
                     f"allowed: {IMPLEMENTATIONS} or None for the default")
  check_window(window, causal)
  shapes = {"q": np.shape(q_BLNK), "k": np.shape(k_BSGK), "v": np.shape(v_BSGK)}
  for name, shape in shapes.items():
    if len(shape) != 4:
      raise ValueError(f"{name} must be rank 4 [batch, length, heads, head_dim]; got shape {shape}")
  (b, l, n, kd), (bk, s, g, kdk) = shapes["q"], shapes["k"]
  if shapes["k"] != shapes["v"]:
    raise ValueError(f"k and v shapes differ: {shapes['k']} vs {shapes['v']}")
  if b != bk:
    raise ValueError(f"batch of q ({b}) and k/v ({bk}) differ")
  if kd != kdk:
    raise ValueError(f"head_dim of q ({kd}) and k ({kdk}) differ")
  if g < 1 or n % g:
    raise ValueError(f"query heads ({n}) must be divisible by key/value heads ({g})")
  target = (b, n, l, s)
  if mask is not None:
    dtype = mask.dtype if hasattr(mask, "dtype") else np.asarray(mask).dtype
    if dtype != np.bool_:
      raise ValueError(f"mask must be boolean (True = may attend); got dtype {dtype}")
    _check_broadcast("mask", mask, target)
  if bias is not None:
    dtype = bias.dtype if hasattr(bias, "dtype") else np.asarray(bias).dtype
    if not jnp.issubdtype(dtype, jnp.floating):
      raise ValueError(f"bias must be floating point; got dtype {dtype}")
    _check_broadcast("bias", bias, target)
  if not 0.0 <= dropout_rate < 1.0:
    raise ValueError(f"dropout_rate must be in [0, 1); got {dropout_rate}")
  if dropout_rate > 0.0 and dropout_rng is None:
    raise ValueError("dropout_rate > 0 needs a dropout_rng")


def naive_attention(q_BLNK, k_BSGK, v_BSGK, *, mask=None, bias=None, causal=False,
                    dropout_rate=0.0, dropout_rng=None, window=None, return_weights=False):
  """The reference: plain einsum and softmax in float32. Returns out_BLNK (and weights_BNLS)."""
  validate(q_BLNK, k_BSGK, v_BSGK, mask=mask, bias=bias, causal=causal,
           dropout_rate=dropout_rate, dropout_rng=dropout_rng, window=window)
  b, l, n, kd = q_BLNK.shape
  s, g = k_BSGK.shape[1], k_BSGK.shape[2]
  q_BLGRK = q_BLNK.reshape(b, l, g, n // g, kd)
  logits_BGRLS = jnp.einsum("blgrk,bsgk->bgrls", q_BLGRK, k_BSGK,
                            preferred_element_type=jnp.float32) / jnp.sqrt(kd).astype(jnp.float32)
  logits_BNLS = logits_BGRLS.reshape(b, n, l, s)
  if bias is not None:
    logits_BNLS = logits_BNLS + _rank4(bias).astype(jnp.float32)
  allowed = _allowed(mask, causal, l, s, window)
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


def _rank4(x):
  """Leading size-1 axes up to rank 4 (explicit broadcasting: rank promotion may be 'raise')."""
  x = jnp.asarray(x)
  return x.reshape((1,) * (4 - x.ndim) + x.shape)


def _allowed(mask, causal, l, s, window=None):
  """Boolean [.., L, S] (rank 4) of what may be attended: mask, the causal triangle, the window."""
  allowed = jnp.ones((1, 1, l, s), bool)
  if mask is not None:
    allowed = jnp.logical_and(allowed, _rank4(mask))
  if causal:
    # Query i sits at absolute position i + (s - l): with a key/value cache the queries are the last l.
    allowed = jnp.logical_and(allowed, jnp.tril(jnp.ones((l, s), bool), k=s - l)[None, None])
  if window is not None:  # the band's lower edge: keys j <= i + (s - l) - window are too old
    too_old_LS = jnp.tril(jnp.ones((l, s), bool), k=s - l - window)
    allowed = jnp.logical_and(allowed, jnp.logical_not(too_old_LS)[None, None])
  return allowed


def jax_nn_attention(q_BLNK, k_BSGK, v_BSGK, *, mask=None, bias=None, causal=False,
                     dropout_rate=0.0, window=None, return_weights=False, implementation="xla"):
  """``jax.nn.dot_product_attention`` with this module's conventions (causal offset, empty rows)."""
  name = implementation
  if return_weights:
    raise ValueError(f"implementation {name!r} cannot return attention weights; use 'naive'")
  if dropout_rate > 0.0:
    raise ValueError(f"implementation {name!r} has no attention dropout; use 'naive' or 'chunked'")
  l, s = q_BLNK.shape[1], k_BSGK.shape[1]
  # jax's is_causal aligns query i with key i; ours aligns the last query with the last key.
  is_causal = causal and l == s
  # jax's local window (left, right) counts the keys before the query: ours includes the query.
  local_window = (window - 1, 0) if is_causal and window is not None else None
  allowed = None
  if mask is not None or (causal and not is_causal):
    allowed = _allowed(mask, causal and not is_causal, l, s, None if is_causal else window)
    if is_causal:  # for the empty-row check below only
      allowed_rows = _allowed(mask, True, l, s, window)
    else:
      allowed_rows = allowed
  if bias is not None:
    bias = _rank4(bias).astype(q_BLNK.dtype)
  out_BLNK = jax.nn.dot_product_attention(q_BLNK, k_BSGK, v_BSGK, bias=bias, mask=allowed,
                                          is_causal=is_causal, local_window_size=local_window,
                                          implementation=implementation)
  if allowed is not None:
    # jax gives rows without any allowed key the mean of v; the reference gives zeros.
    seen_BNL = jnp.any(allowed_rows, axis=-1)
    out_BLNK = jnp.where(jnp.transpose(seen_BNL, (0, 2, 1))[..., None], out_BLNK, 0.0)
  return out_BLNK


def default_implementation(q_BLNK, k_BSGK, *, dropout_rate=0.0, return_weights=False,
                           backend=None):
  """The implementation ``implementation=None`` runs (the rule in the module docstring)."""
  backend = backend or jax.default_backend()
  l, s, kd = q_BLNK.shape[1], k_BSGK.shape[1], q_BLNK.shape[3]
  if return_weights:
    return "naive"
  if backend == "gpu":
    if (dropout_rate == 0.0 and q_BLNK.dtype in (jnp.float16, jnp.bfloat16)
        and kd <= 128 and kd % 8 == 0):
      return "cudnn"
    return "xla" if dropout_rate == 0.0 else "chunked"
  b, n = q_BLNK.shape[0], q_BLNK.shape[2]
  return "naive" if b * n * l * s <= _NAIVE_MAX_LOGITS else "chunked"


def dot_product_attention(q_BLNK, k_BSGK, v_BSGK, *, mask=None, bias=None, causal=False,
                          dropout_rate=0.0, dropout_rng=None, window=None, return_weights=False,
                          implementation=None):
  """Dispatches to an implementation by name (None: the default for the backend and shapes)."""
  validate(q_BLNK, k_BSGK, v_BSGK, mask=mask, bias=bias, causal=causal, dropout_rate=dropout_rate,
           dropout_rng=dropout_rng, window=window, implementation=implementation)
  if implementation is None:
    implementation = default_implementation(q_BLNK, k_BSGK, dropout_rate=dropout_rate,
                                            return_weights=return_weights)
  if implementation == "cudnn" and jax.default_backend() != "gpu":
    raise ValueError(f"implementation 'cudnn' needs a GPU; the backend is "
                     f"{jax.default_backend()!r}. Allowed here: 'naive', 'xla', 'chunked'")
  if implementation in ("xla", "cudnn"):
    return jax_nn_attention(q_BLNK, k_BSGK, v_BSGK, mask=mask, bias=bias, causal=causal,
                            dropout_rate=dropout_rate, window=window,
                            return_weights=return_weights, implementation=implementation)
  if implementation == "chunked" and not return_weights:
    return chunked.chunked_attention(
        q_BLNK, k_BSGK, v_BSGK, mask=mask, bias=bias, causal=causal, dropout_rate=dropout_rate,
        dropout_rng=dropout_rng, window=window)
  return naive_attention(q_BLNK, k_BSGK, v_BSGK, mask=mask, bias=bias, causal=causal,
                         dropout_rate=dropout_rate, dropout_rng=dropout_rng, window=window,
                         return_weights=return_weights)
