"""Memory-efficient attention (Rabe & Staats 2021) with a FlashAttention-2 style backward pass.

This file lays the inputs out and runs ``chunked_blocks`` (the block-by-block forward and
backward, causal block skipping, diagonal row parts) under one custom VJP, for one group of heads
at a time: (batch, key/value head) pairs are processed in groups, one group after another, each
group as large as fits ``block_elements`` logits per block. One head at a time with large blocks
keeps each block's logits in cache, which beat all heads at once with smaller blocks on CPU
(docs/benchmarks.md, "chunked attention's layout").

Dropout draws its keep mask per (group, query block, key block) from
``fold_in(fold_in(fold_in(rng, group), i), j)`` so the backward pass regenerates the forward's mask;
``dropout_keep_mask`` builds the same mask in full for tests. Lengths that the block sizes do not
divide are padded (padded keys masked out).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from attnlab.models.attention import chunked_blocks as ab


def _divisor_at_most(n: int, limit: int) -> int:
  return max(d for d in range(1, n + 1) if n % d == 0 and d <= max(limit, 1))


def _group_shape(b: int, g: int, r: int, bq: int, bk: int, block_elements: int) -> tuple[int, int]:
  """(gb, gg): batch entries and kv heads per group, the most with gb gg r bq bk <= block_elements.

  Heads are grouped first; whole batch entries join only once a group holds all G heads.
  """
  units = block_elements // (r * bq * bk)
  gg = _divisor_at_most(g, units)
  gb = _divisor_at_most(b, units // gg) if gg == g else 1
  return gb, gg


def _group_starts(p: ab.Plan, idx, x):
  """Start of group idx along the batch and kv-head axes of a mask/bias/dbias (0 where size 1)."""
  return (idx // p.ng * p.gb if x.shape[0] > 1 else 0, idx % p.ng * p.gg if x.shape[1] > 1 else 0)


def _group_inputs(p: ab.Plan, idx, mask, bias, rng):
  """Group idx's part of the mask and the bias (broadcast axes left alone) and its dropout key."""
  def cut(x):
    if x is None:
      return None
    b0, g0 = _group_starts(p, idx, x)
    return ab.slice_axis(ab.slice_axis(x, b0, p.gb, 0), g0, p.gg, 1)
  return cut(mask), cut(bias), None if rng is None else jax.random.fold_in(rng, idx)


def _forward_groups(p: ab.Plan, q, k, v, mask, bias, rng):
  """ab.forward for each group of q [n, gb, gg, R, Lp, K], k, v [n, gb, gg, Sp, K] in turn."""
  def body(_, xs):
    idx, q_g, k_g, v_g = xs
    return None, ab.forward(p, q_g, k_g, v_g, *_group_inputs(p, idx, mask, bias, rng))

  _, (out, lse) = lax.scan(body, None, (jnp.arange(q.shape[0]), q, k, v))
  return out, lse


def _backward_groups(p: ab.Plan, q, k, v, mask, bias, rng, out, lse, do):
  """ab.backward for each group in turn; the bias gradient is added into its group's part."""
  def body(dbias, xs):
    idx, q_g, k_g, v_g, out_g, lse_g, do_g = xs
    mask_g, bias_g, rng_g = _group_inputs(p, idx, mask, bias, rng)
    dq, dk, dv, dbias_g = ab.backward(p, q_g, k_g, v_g, mask_g, bias_g, rng_g, out_g, lse_g, do_g)
    if dbias is not None:
      starts = _group_starts(p, idx, dbias) + (0, 0, 0)
      dbias = lax.dynamic_update_slice(
          dbias, lax.dynamic_slice(dbias, starts, dbias_g.shape) + dbias_g, starts)
    return dbias, (dq, dk, dv)

  dbias0 = None if bias is None else jnp.zeros(bias.shape, jnp.float32)
  dbias, (dq, dk, dv) = lax.scan(body, dbias0, (jnp.arange(q.shape[0]), q, k, v, out, lse, do))
  return dq, dk, dv, dbias


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _attend(p: ab.Plan, q, k, v, mask, bias, rng):
  return _forward_groups(p, q, k, v, mask, bias, rng)[0]


def _attend_fwd(p: ab.Plan, q, k, v, mask, bias, rng):
  out, lse = _forward_groups(p, q, k, v, mask, bias, rng)
  return out, (q, k, v, mask, bias, rng, out, lse)


def _attend_bwd(p: ab.Plan, res, do):
  q, k, v, mask, bias, rng, out, lse = res
  dq, dk, dv, dbias = _backward_groups(p, q, k, v, mask, bias, rng, out, lse, do)
  dbias = None if bias is None else dbias.astype(bias.dtype)
  return dq.astype(q.dtype), dk.astype(k.dtype), dv.astype(v.dtype), None, dbias, None


_attend.defvjp(_attend_fwd, _attend_bwd)


def _to_bgrls(x, n: int, g: int, l: int, s: int, pad_l: int, pad_s: int, fill):
  """Mask/bias broadcastable to [B,N,L,S] -> rank 5 [B|1, G|1, R|1, L|1, S|1], padded to blocks."""
  x = x.reshape((1,) * (4 - x.ndim) + x.shape)
  xb, xn, xl, xs = x.shape
  x = x.reshape(xb, g, n // g, xl, xs) if xn == n and n > 1 else x.reshape(xb, 1, 1, xl, xs)
  pads = [(0, 0)] * 3 + [(0, pad_l if xl == l and xl > 1 else 0),
                         (0, pad_s if xs == s and xs > 1 else 0)]
  return jnp.pad(x, pads, constant_values=fill) if any(hi for _, hi in pads) else x


def _plan(b, l, s, n, g, causal, has_mask, dropout_rate, block_q, block_k, block_elements,
          diagonal_parts, window=None):
  for name, value in (("block_q", block_q), ("block_k", block_k),
                      ("block_elements", block_elements), ("diagonal_parts", diagonal_parts)):
    if not isinstance(value, int) or value < 1:
      raise ValueError(f"{name} must be a positive int; got {value!r}")
  if window is not None and not causal:
    raise ValueError(f"window={window} needs causal=True (the window is the last `window` keys "
                     "up to the query)")
  nq, bq = ab.blocks(l, block_q)
  nk, bk = ab.blocks(s, block_k)
  gb, gg = _group_shape(b, g, n // g, bq, bk, block_elements)
  # Row parts need the masked blocks to be those of the causal diagonal and the window's edge:
  # causal alone (no mask, no dropout, whose per-block streams are drawn per whole block), square
  # blocks, and the causal offset s - l a whole number of blocks (the edge blocks are then a
  # static number of blocks before the diagonal).
  parts = diagonal_parts if (causal and not has_mask and dropout_rate == 0.0 and bq == bk
                             and s >= l and (s - l) % bk == 0 and bq % diagonal_parts == 0) else 1
  return ab.Plan(l=l, s=s, bq=bq, nq=nq, bk=bk, nk=nk, causal=bool(causal), has_mask=has_mask,
               dropout_rate=float(dropout_rate), gb=gb, gg=gg, ng=g // gg, parts=parts,
               window=window)


def _to_groups(x_BLGRK, p: ab.Plan, length: int):
  """[B, L, G, R, K] -> [n, gb, gg, R, Lp, K] (groups first, length padded to whole blocks)."""
  b, l, g, r, kd = x_BLGRK.shape
  x = x_BLGRK.reshape(b // p.gb, p.gb, l, p.ng, p.gg, r, kd)
  x = jnp.transpose(x, (0, 3, 1, 4, 5, 2, 6)).reshape(-1, p.gb, p.gg, r, l, kd)
  return jnp.pad(x, [(0, 0)] * 4 + [(0, length - l), (0, 0)])


def chunked_attention(q_BLNK, k_BSGK, v_BSGK, *, mask=None, bias=None, causal=False,
                      dropout_rate=0.0, dropout_rng=None, window=None, block_q=1024,
                      block_k=1024, block_elements=2**20, diagonal_parts=4):
  """Memory-efficient attention; same arguments and result as ``attention.naive_attention``.

  Inputs are assumed validated (``attention.dot_product_attention`` does it). ``block_q`` and
  ``block_k`` are upper bounds: lengths are split into equal blocks with minimal padding.
  ``block_elements`` bounds the logits block of one group of (batch, key/value head) pairs
  (at least one pair per group). The defaults were the fastest measured on a 2-core CPU (batch 4,
  8 heads, head dim 64, lengths 256 to 4096, causal and not; see the module docstring): one head
  at a time from length 1024, all heads of a batch entry together at 256.
  """
  b, l, n, kd = q_BLNK.shape
  s, g = k_BSGK.shape[1], k_BSGK.shape[2]
  p = _plan(b, l, s, n, g, causal, mask is not None, dropout_rate, block_q, block_k, block_elements,
            diagonal_parts, window)
  pad_l, pad_s = p.nq * p.bq - l, p.nk * p.bk - s
  scale = 1.0 / float(kd) ** 0.5
  # One transpose to [groups, gb, gg, R, L, K] / [groups, gb, gg, S, K]: every block product is
  # then a batched matmul, and each group a contiguous slice.
  q = _to_groups((q_BLNK * jnp.asarray(scale, q_BLNK.dtype)).reshape(b, l, g, n // g, kd), p,
                 p.nq * p.bq)
  k, v = (_to_groups(x[:, :, :, None], p, p.nk * p.bk)[:, :, :, 0] for x in (k_BSGK, v_BSGK))
  mask5 = None if mask is None else _to_bgrls(jnp.asarray(mask, bool), n, g, l, s, pad_l, pad_s,
                                              False)
  bias5 = None if bias is None else _to_bgrls(jnp.asarray(bias), n, g, l, s, pad_l, pad_s, 0)
  rng = dropout_rng if dropout_rate > 0.0 else None
  out = _attend(p, q, k, v, mask5, bias5, rng)[:, :, :, :, :l]  # [n, gb, gg, R, L, K]
  out = out.reshape(b // p.gb, p.ng, p.gb, p.gg, n // g, l, kd)
  out = jnp.transpose(out, (0, 2, 5, 1, 3, 4, 6)).reshape(b, l, n, kd)
  return out.astype(q_BLNK.dtype)


def dropout_keep_mask(rng, batch: int, num_heads: int, num_kv_heads: int, q_len: int, k_len: int,
                      dropout_rate: float, *, block_q=1024, block_k=1024, block_elements=2**20):
  """The full [B, N, L, S] keep mask that ``chunked_attention`` draws block by block (for tests)."""
  g, r = num_kv_heads, num_heads // num_kv_heads
  p = _plan(batch, q_len, k_len, num_heads, g, False, False, dropout_rate, block_q, block_k,
            block_elements, 1)
  shape = (p.gb, p.gg, r * p.bq, p.bk)
  groups = []
  for idx in range(batch // p.gb * p.ng):
    key = jax.random.fold_in(rng, idx)
    rows = [jnp.concatenate([ab.keep_mask(p, key, i, j, shape) for j in range(p.nk)], axis=3)
            for i in range(p.nq)]
    groups.append(jnp.stack([x.reshape(p.gb, p.gg, r, p.bq, -1) for x in rows], axis=3))
  keep = jnp.stack(groups).reshape(batch // p.gb, p.ng, p.gb, p.gg, r, p.nq * p.bq, p.nk * p.bk)
  keep = jnp.transpose(keep, (0, 2, 1, 3, 4, 5, 6))[..., :q_len, :k_len]
  return keep.reshape(batch, num_heads, q_len, k_len)
