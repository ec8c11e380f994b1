"""A layer's time axis cut into chunks run one after another, each recomputed in the backward pass.

``over_time_chunks(chunk_fn, size, params, x_BLD, h0, lengths_B)`` applies
``chunk_fn(params, x_BTD, h_start, lengths_B, y_saved) -> (y_BTH, h_end)`` to time chunks of
``size`` steps (the last one shorter when ``size`` does not divide the length), the state flowing
from each chunk to the next, and returns (y_BLH, final state): the same function as one
``chunk_fn`` call over the whole sequence, for any chunk_fn that is a causal recurrence in that
sense (the scan layers). ``y_saved`` is None in the forward pass; when the backward pass recomputes
a chunk it is the chunk's y as the forward pass wrote it, which chunk_fn may use in place of
recomputing what y holds (the gated scans' y is their state: they skip the forward loop), or ignore.

Why: a parallel-scan layer's training step at length 4096 keeps several [L, B, H] float32 arrays
(the projections, the gates, the scan's state and its reverse pass: 134 MB each at B = 32,
H = 256); on XLA:CPU every one of them is fresh memory on every call, paid for in page faults, and
streamed through memory by every pass. Here the forward pass keeps only the chunks' starting
states and writes y; the backward pass walks the chunks in reverse, recomputes each one's forward
pass from its starting state (``jax.vjp`` of ``chunk_fn``: the chunk's own hand-written backward
passes run as usual) and accumulates the parameter gradients. Every intermediate is chunk-sized
and stays in cache; the price is computing each chunk's forward pass twice. When the input is not
differentiated (a first layer fed data), dx is not computed (symbolic zeros).

The layers use it on CPU only (``resolve``): the chunks run one after another, trading the parallel
scan's parallelism over time, which two cores cannot use anyway, for cache locality.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

# Default chunk on CPU: at B = 32, H = 256 a [B, 128, H] float32 array is 4 MB, so a chunk's
# intermediates stay in cache (the fastest of the sizes tried; docs/benchmarks.md).
CPU_SIZE = 128
# By default sequences shorter than this many chunks run whole: chunking pays from about 4 chunks.
DEFAULT_MIN_CHUNKS = 4


def check_fields(segment, time_chunk) -> None:
  """ValueError naming a bad ``segment`` (an int >= 0) or ``time_chunk`` (None or an int >= 0) of
  a layer that runs in time chunks or, whole, by the segmented parallel scan."""
  if not isinstance(segment, int) or segment < 0:
    raise ValueError(f"segment={segment!r}; must be an int >= 0")
  if time_chunk is not None and (not isinstance(time_chunk, int) or time_chunk < 0):
    raise ValueError(f"time_chunk={time_chunk!r}; must be None or an int >= 0")


def resolve(time_chunk: int | None, length: int) -> int:
  """The chunk size a layer runs ``length`` steps with (0: the whole sequence at once).

  ``time_chunk`` when set (any length above it is chunked); None: CPU_SIZE on CPU for lengths of
  at least DEFAULT_MIN_CHUNKS chunks, else 0 (an accelerator runs the whole parallel scan).
  """
  if time_chunk is not None:
    return time_chunk if length > time_chunk else 0
  if jax.default_backend() != "cpu" or length < DEFAULT_MIN_CHUNKS * CPU_SIZE:
    return 0
  return CPU_SIZE


def local_lengths(lengths_B, start: int | jax.Array, size: int):
  """Each sequence's length within the chunk [start, start + size), in [0, size] (None: all)."""
  if lengths_B is None:
    return None
  return jnp.clip(lengths_B - start, 0, size).astype(lengths_B.dtype)


def _chunk_at(x_BLD, start, size):
  """x_BLD[:, start:start + size]."""
  return jax.lax.dynamic_slice_in_dim(x_BLD, start, size, axis=1)


def _bounds(length: int, size: int):
  """(number of full chunks, length of the shorter last chunk or 0)."""
  return length // size, length % size


def _forward(chunk_fn, size, params, x_BLD, h0, lengths_B):
  """(y_BLH, final state, starting state of every full chunk [C, ...], of the last short one)."""
  full, tail = _bounds(x_BLD.shape[1], size)
  first = min(size, x_BLD.shape[1])
  y_shape = jax.eval_shape(chunk_fn, params, _chunk_at(x_BLD, 0, first), h0,
                           local_lengths(lengths_B, 0, first), None)[0]
  y_BLH = jnp.zeros((x_BLD.shape[0], x_BLD.shape[1]) + y_shape.shape[2:], y_shape.dtype)

  def run(state, start, steps):
    """One chunk from the state in ``state``, its outputs written into y: (h_end, y_BLH)."""
    h, y_BLH = state
    y_BTH, h_end = chunk_fn(params, _chunk_at(x_BLD, start, steps), h,
                            local_lengths(lengths_B, start, steps), None)
    return h_end, jax.lax.dynamic_update_slice_in_dim(y_BLH, y_BTH, start, axis=1)

  state, starts_C = (h0, y_BLH), None  # (a loop body is traced even for zero steps: only if any)
  if full:
    state, starts_C = jax.lax.scan(lambda s, c: (run(s, c * size, size), s[0]), state,
                                   jnp.arange(full))
  h_tail = state[0]
  if tail:
    state = run(state, full * size, tail)
  h, y_BLH = state
  return y_BLH, h, starts_C, h_tail


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def over_time_chunks(chunk_fn, size: int, params, x_BLD, h0, lengths_B):
  """(y_BLH, final state) of ``chunk_fn`` run over chunks of ``size`` steps (see the module).

  ``h0`` is the initial state (an array; not None), ``lengths_B`` the sequence lengths or None.
  """
  return _forward(chunk_fn, size, params, x_BLD, h0, lengths_B)[:2]


def _values(tree):
  """The values of a pytree of ``CustomVJPPrimal`` (symbolic-zeros mode)."""
  return jax.tree_util.tree_map(lambda p: p.value, tree)


def _fwd(chunk_fn, size, params, x_BLD, h0, lengths_B):
  # Symbolic zeros tell whether x is differentiated: the first layer's input (data) is not, and
  # dx (a matmul and a full-size write per chunk) is then skipped, as PyTorch skips it.
  needs_dx = x_BLD.perturbed
  params, x_BLD, h0, lengths_B = _values((params, x_BLD, h0, lengths_B))
  y_BLH, h, starts_C, h_tail = _forward(chunk_fn, size, params, x_BLD, h0, lengths_B)
  return (y_BLH, h), (params, x_BLD, lengths_B, y_BLH, starts_C, h_tail, needs_dx)


def _chunk_grads(chunk_fn, needs_dx, params, x_BLD, lengths_B, y_BLH, start, size, h_start,
                 dy_BLH, dh_end):
  """(d params, dx_BTD or None, dh_start) of one chunk, its forward pass recomputed from h_start
  (and from its saved outputs, where chunk_fn reads them)."""
  x_BTD = _chunk_at(x_BLD, start, size)
  lengths = local_lengths(lengths_B, start, size)
  y_BTH, dy_BTH = _chunk_at(y_BLH, start, size), _chunk_at(dy_BLH, start, size)
  if needs_dx:
    return jax.vjp(lambda p, x, h: chunk_fn(p, x, h, lengths, y_BTH), params, x_BTD, h_start)[1](
        (dy_BTH, dh_end))
  dp, dh = jax.vjp(lambda p, h: chunk_fn(p, x_BTD, h, lengths, y_BTH), params, h_start)[1](
      (dy_BTH, dh_end))
  return dp, None, dh


def _dense(ct):
  """A cotangent as an array (symbolic zeros become zeros)."""
  if isinstance(ct, jax.custom_derivatives.SymbolicZero):
    return jnp.zeros(ct.shape, ct.dtype)
  return ct


def _add(total, part):
  return jax.tree_util.tree_map(lambda t, p: t + p.astype(t.dtype), total, part)


def _bwd(chunk_fn, size, res, cotangents):
  params, x_BLD, lengths_B, y_BLH, starts_C, h_tail, needs_dx = res
  dy_BLH, dh = (_dense(ct) for ct in cotangents)
  full, tail = _bounds(x_BLD.shape[1], size)
  grads = functools.partial(_chunk_grads, chunk_fn, needs_dx, params, x_BLD, lengths_B, y_BLH)
  dparams = jax.tree_util.tree_map(
      lambda p: jnp.zeros(p.shape, jnp.promote_types(p.dtype, jnp.float32)), params)
  dx_BLD = jnp.zeros_like(x_BLD) if needs_dx else None

  def add(state, start, steps, h_start):
    dparams, dx_BLD, dh = state
    dp, dx_BTD, dh = grads(start, steps, h_start, dy_BLH, dh)
    if needs_dx:
      dx_BLD = jax.lax.dynamic_update_slice_in_dim(
          dx_BLD, dx_BTD.astype(dx_BLD.dtype), start, axis=1)
    return _add(dparams, dp), dx_BLD, dh

  state = (dparams, dx_BLD, dh)
  if tail:
    state = add(state, full * size, tail, h_tail)
  if full:
    state = jax.lax.fori_loop(
        0, full, lambda i, s: add(s, (full - 1 - i) * size, size, starts_C[full - 1 - i]), state)
  dparams, dx_BLD, dh = state
  dparams = jax.tree_util.tree_map(lambda d, p: d.astype(p.dtype), dparams, params)
  return dparams, dx_BLD, dh, None


over_time_chunks.defvjp(_fwd, _bwd, symbolic_zeros=True)
