"""Memory-efficient attention of one group of heads, block by block (used by chunked.py).

Forward: query blocks in a scan; for each, an online softmax over key blocks (running max ``m``,
running sum ``l``, accumulator ``acc``). Only ``out`` and the row logsumexp are kept for the
backward pass (FlashAttention-2 style), which recomputes the probabilities block by block and
accumulates dq, dk, dv (and the bias gradient) with matmuls. Memory is O(L + S) apart from one block
of logits.

Causal attention iterates only over the key blocks that some query of the block may see, and
applies no mask at all to blocks that every query sees fully. A sliding window (``Plan.window``:
query i sees keys i + (s - l) - window < j <= i + (s - l)) also starts the run at the first key
block inside the window, so that a query block visits about (bq + window) / bk + 1 key blocks
whatever the length: ``window_range`` gives where the run starts and which blocks the window's
lower edge cuts (masked), ``key_range`` which need no mask and where the masked diagonal begins.
With ``Plan.parts`` > 1 the masked blocks (the diagonal, and with a window the blocks its lower
edge cuts) are computed in row parts, part a holding queries [a w, (a + 1) w) and only the keys
they may see, which skips the masked half of each diagonal block (docs/benchmarks.md).

Arrays: q [B, G, R, Lp, K] (R query heads per key/value head), k, v [B, G, Sp, K]; a block's rows
are (head in group, query) pairs, R * bq of them; mask/bias rank 5 [B|1, G|1, R|1, Lp|1, Sp|1].
Dropout draws its keep mask per (query block, key block) from ``fold_in(fold_in(rng, i), j)`` so the
backward pass regenerates the forward's mask.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax import lax

# Masked logits; finite so that a running max over a fully masked block stays well defined.
_NEG = -1e30


@dataclasses.dataclass(frozen=True)
class Plan:
  """Static shapes and options of one attention call (hashable: a custom_vjp nondiff arg)."""
  l: int  # query length
  s: int  # key length
  bq: int  # query block
  nq: int  # number of query blocks
  bk: int  # key block
  nk: int  # number of key blocks
  causal: bool  # query i sees keys j <= i + (s - l)
  has_mask: bool  # a boolean mask is given (every block then goes through the masked path)
  dropout_rate: float  # dropout on the attention weights
  gb: int = 1  # batch entries per group
  gg: int = 1  # key/value heads per group
  ng: int = 1  # groups along the key/value heads (G // gg)
  parts: int = 1  # row parts of the masked blocks (diagonal, window edge); 1: each whole, masked
  window: int | None = None  # causal sliding window: query i sees keys j > i + (s - l) - window


def blocks(length: int, target: int) -> tuple[int, int]:
  """(num_blocks, block) covering ``length`` with blocks of at most ~target and minimal padding."""
  n = -(-length // target)
  block = -(-length // n)
  if n > 1:
    block = -(-block // 8) * 8  # multiples of 8 keep the matmuls vectorisable
  return n, block


def _window_lo(p: Plan, i):
  """First key block that some query of block i may see under the window (unclipped)."""
  return (i * p.bq + (p.s - p.l) - p.window + 1) // p.bk


def key_range(p: Plan, i):
  """Key blocks for query block i: [n_full, n_hi) need a mask (the causal diagonal, or every
  visited block when there is a mask); those before n_full need none, down to ``window_range``'s
  n_in (0 without a window)."""
  if p.causal:
    off = p.s - p.l
    q_last = jnp.minimum((i + 1) * p.bq, p.l) - 1  # padded queries need no extra key blocks
    n_hi = jnp.clip((q_last + off) // p.bk + 1, 0, p.nk)
    n_full = jnp.clip((i * p.bq + off + 1) // p.bk, 0, n_hi)
  else:
    n_hi = jnp.asarray(p.nk)
    n_full = n_hi
  if p.has_mask:  # every visited block is masked
    n_full = jnp.zeros_like(n_full) if p.window is None else jnp.clip(_window_lo(p, i), 0, n_hi)
  if p.nk * p.bk > p.s:  # the last key block holds padding
    n_full = jnp.minimum(n_full, p.nk - 1)
  return n_full, n_hi


def window_range(p: Plan, i):
  """(n_lo, n_in) for query block i with a window: its run of key blocks starts at n_lo, the first
  block any of its queries sees; [n_lo, n_in) are cut by the window's lower edge (masked) and
  n_in <= key_range's n_full. Blocks before n_lo are never visited."""
  n_full, _ = key_range(p, i)
  n_lo = jnp.clip(_window_lo(p, i), 0, n_full)
  # The first block inside the window of every row of the block (padded ones too, so that with
  # row parts the edge blocks are a static number of blocks before the diagonal).
  q_last = (i + 1) * p.bq - 1
  n_in = -((p.window - 1 - q_last - (p.s - p.l)) // p.bk)
  return n_lo, jnp.clip(n_in, n_lo, n_full)


def slice_axis(x, start, size, axis):
  """Block of a mask/bias along an axis; size-1 (broadcast) axes are left alone."""
  if x.shape[axis] == 1:
    return x
  return lax.dynamic_slice_in_dim(x, start, size, axis=axis)


def _block_inputs(p: Plan, q0, k0, rows: int, cols: int, mask, bias):
  """(allowed_BGRLS, bias_BGRLS or None) of queries [q0, q0 + rows) and keys [k0, k0 + cols)."""
  bias_blk = None
  if bias is not None:
    bias_blk = slice_axis(slice_axis(bias, q0, rows, 3), k0, cols, 4).astype(jnp.float32)
  q_pos = q0 + lax.broadcasted_iota(jnp.int32, (rows, cols), 0)
  k_pos = k0 + lax.broadcasted_iota(jnp.int32, (rows, cols), 1)
  allowed = k_pos < p.s
  if p.causal:
    allowed = jnp.logical_and(allowed, k_pos <= q_pos + (p.s - p.l))
  if p.window is not None:  # k_pos >= 0: row parts slice edge blocks before key 0 at key 0
    allowed = jnp.logical_and(allowed, (k_pos > q_pos + (p.s - p.l) - p.window) & (k_pos >= 0))
  allowed = allowed.reshape(1, 1, 1, rows, cols)
  if mask is not None:
    allowed = jnp.logical_and(allowed, slice_axis(slice_axis(mask, q0, rows, 3), k0, cols, 4))
  return allowed, bias_blk


def keep_mask(p: Plan, rng, i, j, shape):
  """Dropout keep mask of block (i, j), identical in the forward and backward passes."""
  key = jax.random.fold_in(jax.random.fold_in(rng, i), j)
  return jax.random.bernoulli(key, 1.0 - p.dropout_rate, shape)


def _rows(x, i, bq):
  """Query block i of x [B, G, R, Lp, ...] as [B, G, R * bq, ...] (rows: (head in group, query))."""
  x = lax.dynamic_slice_in_dim(x, i * bq, bq, axis=3)
  return x.reshape(x.shape[:2] + (-1,) + x.shape[4:])


def _row_part(x, a: int, w: int, r: int, axis: int = 2):
  """Queries [a w, (a + 1) w) of a block's rows (R * bq along ``axis``, head-in-group major)."""
  x = x.reshape(x.shape[:axis] + (r, -1) + x.shape[axis + 1:])
  x = lax.slice_in_dim(x, a * w, (a + 1) * w, axis=axis + 1)
  return x.reshape(x.shape[:axis] + (-1,) + x.shape[axis + 2:])


def _join_rows(parts, r: int):
  """Inverse of _row_part over all parts (axis 2)."""
  parts = [x.reshape(x.shape[:2] + (r, -1) + x.shape[3:]) for x in parts]
  x = jnp.concatenate(parts, axis=3)
  return x.reshape(x.shape[:2] + (-1,) + x.shape[4:])


def _masked(x, allowed, value):
  """where(allowed, x, value), x [B, G, R*rows, cols], allowed rank 5 [.., R|1, rows, cols]."""
  b, g, rq, bk = x.shape
  x5 = x.reshape(b, g, rq // allowed.shape[3], allowed.shape[3], bk)
  return jnp.where(allowed, x5, value).reshape(x.shape)


def _scores(p: Plan, q0, k0, rows: int, q_r, kT_b, mask, bias, masked):
  """Logits [B, G, R*rows, cols] of queries q_r (from q0), keys kT_b (from k0); + bias, masked."""
  # kT is [B, G, K, S] so that this is a plain batched matmul; q @ k^T with k as [S, K] ran ~2x
  # slower on CPU, and rank-5 (R-split) operands added a layout copy of every logits block.
  s = jnp.einsum("bgqk,bgks->bgqs", q_r, kT_b, preferred_element_type=jnp.float32)
  allowed, bias_blk = _block_inputs(p, q0, k0, rows, kT_b.shape[3], mask, bias)
  if bias_blk is not None:
    b, g, rq, bk = s.shape
    s = (s.reshape(b, g, rq // rows, rows, bk) + bias_blk).reshape(s.shape)
  if masked:
    s = _masked(s, allowed, _NEG)
  return s, allowed


def _row_parts(p: Plan, i, n_full):
  """[(q0, rows, [(k0, cols), ..])] of query block i's row parts (causal, parts > 1): part a holds
  queries [a w, (a + 1) w) of the block and, per masked block, only the keys it may see: its
  segment of each block cut by the window's lower edge (farthest first), then of the diagonal.

  The diagonal block starts at the key of the block's first query (``_plan`` allows parts only
  then), so every segment is a static offset from it. An edge block before key 0 (the first query
  blocks) is sliced at key 0 instead and masked whole by its true positions (``_block_inputs``).
  """
  w, bk = p.bq // p.parts, p.bk
  d0 = n_full * bk  # the diagonal block's first key
  near, far = 0, 0  # edge blocks: distances (near, far] from the diagonal; closer ones are whole
  if p.window is not None:
    near, far = max(0, (p.window - p.bq) // bk), -((1 - p.window) // bk)
  parts = []
  for a in range(p.parts):
    first = a * w - (p.bq if p.window is None else p.window - 1)  # part a's first key - d0
    segments = []
    for d in range(far, near, -1):  # block d0 - d bk
      lo, hi = max(first, -d * bk), min((a + 1) * w, (1 - d) * bk)
      if lo < hi:
        lo = -d * bk + (lo + d * bk) // 8 * 8  # 8-aligned within the block
        segments.append((d0 + lo, hi - lo))
    lo = max(first, 0) // 8 * 8
    segments.append((d0 + lo, (a + 1) * w - lo))
    parts.append((i * p.bq + a * w, w, segments))
  return parts


def _softmax_step(p: Plan, carry, q_r, kT_b, v_b, q0, k0, rows, mask, bias, masked, keep):
  """One online-softmax update of (m, l, acc) with one block of keys."""
  m, l, acc = carry
  s, allowed = _scores(p, q0, k0, rows, q_r, kT_b, mask, bias, masked)
  m_new = jnp.maximum(m, s.max(axis=-1))
  pr = jnp.exp(s - m_new[..., None])
  if masked:
    pr = _masked(pr, allowed, 0.0)
  corr = jnp.exp(m - m_new)
  l = l * corr + pr.sum(axis=-1)
  if keep is not None:
    pr = jnp.where(keep(pr.shape), pr / (1.0 - p.dropout_rate), 0.0)
  pv = jnp.einsum("bgqs,bgsk->bgqk", pr.astype(v_b.dtype), v_b, preferred_element_type=jnp.float32)
  return m_new, l, acc * corr[..., None] + pv


def _forward_qblock(p: Plan, i, q_i, kT, v, mask, bias, rng):
  """Online softmax over the needed key blocks for query rows q_i -> (out_i, lse_i)."""
  b, g, rq, kd = q_i.shape
  r = rq // p.bq
  n_full, n_hi = key_range(p, i)

  def step(j, carry, masked):
    kT_j = lax.dynamic_slice_in_dim(kT, j * p.bk, p.bk, axis=3)
    v_j = lax.dynamic_slice_in_dim(v, j * p.bk, p.bk, axis=2)
    keep = None
    if p.dropout_rate > 0.0:
      keep = functools.partial(keep_mask, p, rng, i, j)
    return _softmax_step(p, carry, q_i, kT_j, v_j, i * p.bq, j * p.bk, p.bq, mask, bias, masked,
                         keep)

  carry = (jnp.full((b, g, rq), _NEG, jnp.float32), jnp.zeros((b, g, rq), jnp.float32),
           jnp.zeros((b, g, rq, kd), jnp.float32))
  n_in = 0
  if p.window is not None:  # the blocks cut by the window's lower edge (in row parts below)
    n_lo, n_in = window_range(p, i)
    if p.parts == 1:
      carry = lax.fori_loop(n_lo, n_in, functools.partial(step, masked=True), carry)
  carry = lax.fori_loop(n_in, n_full, functools.partial(step, masked=False), carry)
  if p.parts > 1:  # the masked blocks, each row part with the keys it may see
    parts = []
    for a, (q0, rows, segments) in enumerate(_row_parts(p, i, n_full)):
      part, q_a = tuple(_row_part(x, a, rows, r) for x in carry), _row_part(q_i, a, rows, r)
      for k0, cols in segments:
        kT_b = lax.dynamic_slice_in_dim(kT, k0, cols, axis=3)
        v_b = lax.dynamic_slice_in_dim(v, k0, cols, axis=2)
        part = _softmax_step(p, part, q_a, kT_b, v_b, q0, k0, rows, mask, bias, True, None)
      parts.append(part)
    m, l, acc = (_join_rows([x[c] for x in parts], r) for c in range(3))
  else:
    m, l, acc = lax.fori_loop(n_full, n_hi, functools.partial(step, masked=True), carry)
  seen = l > 0.0  # rows with no allowed key give zeros, as in the naive reference
  out = jnp.where(seen[..., None], acc / jnp.where(seen, l, 1.0)[..., None], 0.0)
  lse = jnp.where(seen, m + jnp.log(jnp.where(seen, l, 1.0)), jnp.inf)
  return out, lse


def _unblock(x_J, shape):
  """Stacked per-block rows [nq, B, G, R * bq, ...] -> [B, G, R, nq * bq, ...] (= shape)."""
  nq, b, g = x_J.shape[:3]
  x = x_J.reshape((nq, b, g, shape[2], -1) + x_J.shape[4:])
  return jnp.moveaxis(x, 0, 3).reshape(shape)


def forward(p: Plan, q, k, v, mask, bias, rng):
  kT = jnp.swapaxes(k, 2, 3)

  def body(_, i):
    return None, _forward_qblock(p, i, _rows(q, i, p.bq), kT, v, mask, bias, rng)

  _, (out_J, lse_J) = lax.scan(body, None, jnp.arange(p.nq))
  return _unblock(out_J, q.shape).astype(q.dtype), _unblock(lse_J, q.shape[:4])


def _add_at(x, start, update, axis):
  """x with update added into x[start : start + size] along axis."""
  old = lax.dynamic_slice_in_dim(x, start, update.shape[axis], axis=axis)
  return lax.dynamic_update_slice_in_dim(x, old + update, start, axis=axis)


def _grad_step(p: Plan, rows_in, k_b, kT_b, vT_b, q0, k0, rows, mask, bias, masked, keep):
  """Gradient contributions of one block: (dq rows, dk^T block, dv^T block, ds)."""
  q_r, do_r, lse_r, delta_r, qT_r, doT_r = rows_in
  s, allowed = _scores(p, q0, k0, rows, q_r, kT_b, mask, bias, masked)
  pr = jnp.exp(s - lse_r[..., None])
  if masked:
    pr = _masked(pr, allowed, 0.0)
  dp = jnp.einsum("bgqk,bgks->bgqs", do_r, vT_b, preferred_element_type=jnp.float32)
  pd = pr
  if keep is not None:
    keep = keep(pr.shape)
    pd = jnp.where(keep, pr / (1.0 - p.dropout_rate), 0.0)
    dp = jnp.where(keep, dp / (1.0 - p.dropout_rate), 0.0)
  ds = pr * (dp - delta_r[..., None])
  dvT_b = jnp.einsum("bgkq,bgqs->bgks", doT_r, pd.astype(doT_r.dtype),
                     preferred_element_type=jnp.float32)
  dkT_b = jnp.einsum("bgkq,bgqs->bgks", qT_r, ds.astype(qT_r.dtype),
                     preferred_element_type=jnp.float32)
  dq_r = jnp.einsum("bgqs,bgsk->bgqk", ds.astype(k_b.dtype), k_b,
                    preferred_element_type=jnp.float32)
  return dq_r, dkT_b, dvT_b, ds


def _add_dbias(dbias, ds, q0, k0, rows: int):
  """Sum ds over the axes along which the bias broadcasts, then add it into its block."""
  b, g, rq, cols = ds.shape
  ds5 = ds.reshape(b, g, rq // rows, rows, cols)
  axes = tuple(a for a in range(5) if dbias.shape[a] == 1)
  ds5 = ds5.sum(axis=axes, keepdims=True) if axes else ds5
  starts = [0, 0, 0, 0 if dbias.shape[3] == 1 else q0, 0 if dbias.shape[4] == 1 else k0]
  old = lax.dynamic_slice(dbias, starts, ds5.shape)
  return lax.dynamic_update_slice(dbias, old + ds5, starts)


def backward(p: Plan, q, k, v, mask, bias, rng, out, lse, do):
  """Recomputes probabilities per block; accumulates dq_i in the inner carry, dk/dv/dbias in full.

  Every block product is a plain batched matmul [.., M, K] @ [.., K, N]: k and v are also kept
  transposed ([B, G, K, S]), q and dO as [B, G, K, R, L], and dk, dv are accumulated transposed.
  """
  delta = jnp.sum(do.astype(jnp.float32) * out.astype(jnp.float32), axis=-1)  # rowsum(dO * O)
  kT, vT = jnp.swapaxes(k, 2, 3), jnp.swapaxes(v, 2, 3)
  qT, doT = jnp.moveaxis(q, 4, 2), jnp.moveaxis(do, 4, 2)  # [B, G, K, R, L]
  r = q.shape[2]

  def qblock(carry, i):
    dkT, dvT, dbias = carry
    qT_i = lax.dynamic_slice_in_dim(qT, i * p.bq, p.bq, axis=4)
    doT_i = lax.dynamic_slice_in_dim(doT, i * p.bq, p.bq, axis=4)
    rows_in = (_rows(q, i, p.bq), _rows(do, i, p.bq), _rows(lse, i, p.bq), _rows(delta, i, p.bq),
               qT_i.reshape(qT_i.shape[:3] + (-1,)), doT_i.reshape(doT_i.shape[:3] + (-1,)))
    n_full, n_hi = key_range(p, i)

    def step(j, inner, masked):
      dq_i, dkT, dvT, dbias = inner
      k0 = j * p.bk
      keep = None
      if p.dropout_rate > 0.0:
        keep = functools.partial(keep_mask, p, rng, i, j)
      dq_b, dkT_b, dvT_b, ds = _grad_step(
          p, rows_in, lax.dynamic_slice_in_dim(k, k0, p.bk, axis=2),
          lax.dynamic_slice_in_dim(kT, k0, p.bk, axis=3),
          lax.dynamic_slice_in_dim(vT, k0, p.bk, axis=3), i * p.bq, k0, p.bq, mask, bias, masked,
          keep)
      if dbias is not None:
        dbias = _add_dbias(dbias, ds, i * p.bq, k0, p.bq)
      return dq_i + dq_b, _add_at(dkT, k0, dkT_b, 3), _add_at(dvT, k0, dvT_b, 3), dbias

    inner = (jnp.zeros(rows_in[0].shape, jnp.float32), dkT, dvT, dbias)
    n_in = 0
    if p.window is not None:  # the blocks cut by the window's lower edge (in row parts below)
      n_lo, n_in = window_range(p, i)
      if p.parts == 1:
        inner = lax.fori_loop(n_lo, n_in, functools.partial(step, masked=True), inner)
    inner = lax.fori_loop(n_in, n_full, functools.partial(step, masked=False), inner)
    if p.parts > 1:  # the masked blocks, each row part with the keys it may see
      dq_i, dkT, dvT, dbias = inner
      dq_parts = []
      for a, (q0, rows, segments) in enumerate(_row_parts(p, i, n_full)):
        part = tuple(_row_part(x, a, rows, r, axis=3 if n >= 4 else 2)
                     for n, x in enumerate(rows_in))
        dq_a = _row_part(dq_i, a, rows, r)
        for k0, cols in segments:
          dq_b, dkT_b, dvT_b, ds = _grad_step(
              p, part, lax.dynamic_slice_in_dim(k, k0, cols, axis=2),
              lax.dynamic_slice_in_dim(kT, k0, cols, axis=3),
              lax.dynamic_slice_in_dim(vT, k0, cols, axis=3), q0, k0, rows, mask, bias, True,
              None)
          dq_a = dq_a + dq_b
          dkT, dvT = _add_at(dkT, k0, dkT_b, 3), _add_at(dvT, k0, dvT_b, 3)
          if dbias is not None:
            dbias = _add_dbias(dbias, ds, q0, k0, rows)
        dq_parts.append(dq_a)
      dq_i = _join_rows(dq_parts, r)
    else:
      dq_i, dkT, dvT, dbias = lax.fori_loop(n_full, n_hi, functools.partial(step, masked=True),
                                            inner)
    return (dkT, dvT, dbias), dq_i

  dbias0 = None if bias is None else jnp.zeros(bias.shape, jnp.float32)
  init = (jnp.zeros(kT.shape, jnp.float32), jnp.zeros(vT.shape, jnp.float32), dbias0)
  (dkT, dvT, dbias), dq_J = lax.scan(qblock, init, jnp.arange(p.nq))
  return _unblock(dq_J, q.shape), jnp.swapaxes(dkT, 2, 3), jnp.swapaxes(dvT, 2, 3), dbias
