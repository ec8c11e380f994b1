"""The linear recurrence h_t = a_t h_{t-1} + b_t over time (axis 1), in parallel and sequentially.

Shapes: a broadcasts against b_BL... (a may have size 1 on any axis but time, e.g. the LRU's
constant lambda), h0 is b without its time axis. Real or complex.

Parallel forms use ``jax.lax.associative_scan`` on (a, b) pairs with the combine
(a1, b1) o (a2, b2) = (a1 a2, a2 b1 + b2): products of a shrink towards 0 but never divide, so this
is stable at any length (unlike the cumprod/cumsum form h = A (h0 + cumsum(b / A)), A = cumprod(a),
whose 1 / A overflows). The log-space form of Feng et al. (2024) runs the same combine on
(log a, log b) with logaddexp: values far below float32's range stay representable, at the price
of rounding h to about |log h| * eps relative (the plain combine is ~10x more precise at length
4096 here); ``parallel_scan_log`` is the paper's own cumsum + logcumsumexp function. Both parallel
forms have a hand-written backward pass, itself one reverse linear scan (g_t = dL/dh_t +
a_{t+1} g_{t+1}; dL/db_t = g_t, dL/da_t = g_t h_{t-1}), which is faster and lighter than
differentiating through the scan tree.

The layers call the time-major form (``linear_scan_time_major``: [L, B, ...] arrays, segmented
scan without transposes, b's buffer overwritten by h); ``linear_scan`` is the same on batch-major
arrays (transposed in and out).
On XLA:CPU the segmented runs are what makes either fast: a pure ``associative_scan`` (segment = 0,
kept selectable and tested) reads and writes every element a few dozen times in strided slices.

Per-sequence lengths: positions t >= length are padding. The state stops changing there (as if
a = 1, b = 0): the final state is h at length - 1 (h0 when length is 0), outputs there are zero.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from attnlab.models import masks


SEGMENT = 64  # default time steps per sequential run inside the parallel scan (see _scan_time_major)

# An algebra is (compose coefficients, apply one step to a state, unit coefficient, zero state):
# h_t = a_t h_{t-1} + b_t in linear space, and the same on logarithms in log space.
_LINEAR = (jnp.multiply, lambda h, a, b: a * h + b, 1.0, 0.0)
_LOG = (jnp.add, lambda h, a, b: jnp.logaddexp(a + h, b), 0.0, -jnp.inf)


def _combiner(algebra):
  compose, step = algebra[:2]
  return lambda left, right: (compose(left[0], right[0]), step(left[1], right[0], right[1]))


def _to_segments(x, segment, fill):
  """[B, L, ...] -> [T, J, B, ...] (T = segment), the time axis padded with ``fill`` to J * T."""
  pad = -x.shape[1] % segment
  if pad:
    x = jnp.concatenate([x, jnp.full((x.shape[0], pad) + x.shape[2:], fill, x.dtype)], axis=1)
  x = x.reshape((x.shape[0], x.shape[1] // segment, segment) + x.shape[2:])
  return jnp.moveaxis(x, (0, 1, 2), (2, 1, 0))


def _from_segments(x_TJB, length):
  x = jnp.moveaxis(x_TJB, (0, 1, 2), (2, 1, 0))
  return x.reshape((x.shape[0], -1) + x.shape[3:])[:, :length]


def _scan_time(algebra, a, b, segment, reverse=False):
  """Zero-initialised inclusive scan over axis 1 (from the end when ``reverse``).

  segment = 0: one ``associative_scan`` over all L steps. segment = T > 0: each run of T steps is
  scanned sequentially, all runs at once, and the runs are joined with an ``associative_scan`` over
  the L / T run totals. On CPU the second form reads and writes each element a few times instead of
  a few dozen (the scan tree's strided slices and interleaving pads), which makes it several times
  faster; it is the same parallel algorithm with its lowest levels done serially.
  """
  combine = _combiner(algebra)
  if not segment:
    return jax.lax.associative_scan(combine, (a, b), reverse=reverse, axis=1)[1]
  compose, step, unit, zero = algebra
  length = b.shape[1]
  a_TJB, b_TJB = _to_segments(a, segment, unit), _to_segments(b, segment, zero)

  def total(carry, ab):
    return combine(carry, ab), None

  start = (jnp.full_like(a_TJB[0], unit), jnp.full_like(b_TJB[0], zero))
  (a_JB, b_JB), _ = jax.lax.scan(total, start, (a_TJB, b_TJB), reverse=reverse)
  _, h_JB = jax.lax.associative_scan(combine, (a_JB, b_JB), reverse=reverse, axis=0)
  # The state entering each run is the inclusive result of the run before it (after, in reverse).
  first = jnp.full_like(h_JB[:1], zero)
  h_in_JB = (jnp.concatenate([h_JB[1:], first]) if reverse
             else jnp.concatenate([first, h_JB[:-1]]))

  def run(h, ab):
    h = step(h, ab[0], ab[1])
    return h, h

  _, h_TJB = jax.lax.scan(run, h_in_JB, (a_TJB, b_TJB), reverse=reverse)
  return _from_segments(h_TJB, length)


def _scan_time_major(a, b, segment, reverse=False):
  """Zero-initialised inclusive scan over axis 0 of time-major [L, B, ...] arrays.

  segment = 0: one ``associative_scan``. segment = T > 0: the sequence is cut into J = L / T runs
  of T steps, viewed as [J, T, B, ...] (a free reshape). A first loop over the T steps composes
  every run's total, all runs at once; an ``associative_scan`` over the J segment totals gives the
  state entering each run; a second loop over the T steps runs all runs from those states. Each
  loop step reads and writes C slabs of one contiguous [B, ...] time step, so unlike the
  batch-major form nothing is transposed.
  """
  combine = _combiner(_LINEAR)
  if not segment:
    return jax.lax.associative_scan(combine, (a, b), reverse=reverse, axis=0)[1]
  length = b.shape[0]
  pad = -length % segment
  if pad:
    a = jnp.concatenate([a, jnp.ones((pad,) + a.shape[1:], a.dtype)])
    b = jnp.concatenate([b, jnp.zeros((pad,) + b.shape[1:], b.dtype)])
  a_JT, b_JT = (v.reshape((v.shape[0] // segment, segment) + v.shape[1:]) for v in (a, b))
  at = lambda v, t: jax.lax.dynamic_index_in_dim(v, t, axis=1, keepdims=False)
  step = (lambda i: segment - 1 - i) if reverse else (lambda i: i)

  def total(i, ab):
    t = step(i)
    return combine(ab, (at(a_JT, t), at(b_JT, t)))

  ones = jnp.ones(a_JT.shape[:1] + a_JT.shape[2:], a.dtype)
  zeros = jnp.zeros(b_JT.shape[:1] + b_JT.shape[2:], b.dtype)
  a_J, b_J = jax.lax.fori_loop(0, segment, total, (ones, zeros))
  _, h_J = jax.lax.associative_scan(combine, (a_J, b_J), reverse=reverse, axis=0)
  # The state entering each run is the inclusive result of the run before it (after, in reverse).
  h = (jnp.concatenate([h_J[1:], zeros[:1]]) if reverse
       else jnp.concatenate([zeros[:1], h_J[:-1]]))

  def run(i, carry):
    # h_t overwrites b_t once read: b's buffer becomes h's, no fresh full-size buffer.
    h, h_JT = carry
    t = step(i)
    h = at(a_JT, t) * h + at(h_JT, t)
    return h, jax.lax.dynamic_update_index_in_dim(h_JT, h, t, axis=1)

  _, h_JT = jax.lax.fori_loop(0, segment, run, (h, b_JT))
  return h_JT.reshape((-1,) + b.shape[1:])[:length]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def scan_time_major(a, b, segment=SEGMENT):
  """h_t = a_t h_{t-1} + b_t, h_{-1} = 0, over axis 0 of time-major arrays (a broadcasts)."""
  return _scan_time_major(jnp.broadcast_to(a, b.shape[:1] + a.shape[1:]), b, segment)


def _scan_tm_fwd(a, b, segment):
  h = scan_time_major(a, b, segment)
  return h, (a, h)


def _scan_tm_bwd(segment, res, g_h):
  a, h = res
  a_full = jnp.broadcast_to(a, h.shape[:1] + a.shape[1:])
  g = _scan_time_major(jnp.concatenate([a_full[1:], jnp.zeros_like(a_full[:1])]), g_h, segment,
                       reverse=True)
  g_a = g * jnp.concatenate([jnp.zeros_like(h[:1]), h[:-1]])
  return sum_to_shape(g_a, a.shape), g


scan_time_major.defvjp(_scan_tm_fwd, _scan_tm_bwd)


def sum_to_shape(x, shape):
  """Sums x over the axes where ``shape`` has size 1 (the transpose of broadcasting).

  Complex x is summed as its real and imaginary parts: XLA:CPU lowers a complex64 sum over the
  leading axes to a reduce-window ~10x slower than the two float32 sums (LRU's lambda gradient).
  """
  axes = tuple(i for i, (n, m) in enumerate(zip(shape, x.shape)) if n == 1 and m != 1)
  if not axes:
    return x
  if jnp.iscomplexobj(x):
    return jax.lax.complex(jnp.sum(jnp.real(x), axis=axes, keepdims=True),
                           jnp.sum(jnp.imag(x), axis=axes, keepdims=True))
  return jnp.sum(x, axis=axes, keepdims=True)


def _shift_back(x):
  """x_{t-1} along time, with zeros at t = 0."""
  return jnp.concatenate([jnp.zeros_like(x[:, :1]), x[:, :-1]], axis=1)


def _reverse_grads(a, h, g_h, segment):
  """dL/db and dL/da (before summing over broadcast axes) from h (h0 folded in) and dL/dh."""
  # a may keep size 1 on broadcast axes: the scans broadcast, so it is never tiled here.
  a_next = jnp.concatenate([a[:, 1:], jnp.zeros_like(a[:, :1])], axis=1)
  g = _scan_time(_LINEAR, a_next, g_h, segment, reverse=True)
  return g, g * _shift_back(h)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _log_scan(log_a, log_b, segment):
  """h (not log h) of the zero-initialised recurrence with a = exp(log_a), b = exp(log_b)."""
  return jnp.exp(_scan_time(_LOG, log_a, log_b, segment))


def _log_scan_fwd(log_a, log_b, segment):
  h = _log_scan(log_a, log_b, segment)
  return h, (log_a, log_b, h)


def _log_scan_bwd(segment, res, g_h):
  log_a, log_b, h = res
  a = jnp.exp(log_a)
  g_b, g_ah = _reverse_grads(a, h, g_h, segment)
  # d/dlog b = b dL/db and d/dlog a = a dL/da; factors that underflow contribute nothing anyway.
  return sum_to_shape(g_ah * a, log_a.shape), g_b * jnp.exp(log_b)


_log_scan.defvjp(_log_scan_fwd, _log_scan_bwd)


def _cumsum(x):
  # XLA:CPU lowers jnp.cumsum to a quadratic reduce-window; the scan is O(L log L) work at most.
  return jax.lax.associative_scan(jnp.add, x, axis=1)


def _valid(lengths_B, like, time_axis: int = 1):
  """Boolean mask that broadcasts against ``like`` (time on ``time_axis``, 0 or 1, the batch on the
  other): [B, L, 1, ...] or [L, B, 1, ...], True before each sequence's end."""
  valid_BL = masks.valid_BL(lengths_B, like.shape[time_axis])
  valid = valid_BL if time_axis == 1 else valid_BL.T
  return valid.reshape(valid.shape + (1,) * (like.ndim - 2))


def finish(h, h0, lengths_B):
  """(h zeroed past each end, final state: h at length - 1, h0 if length is 0) of batch-major h."""
  return mask_outputs(h, lengths_B), last_state(h, h0, lengths_B)


def linear_scan(a, b, h0=None, lengths_B=None, segment=SEGMENT):
  """h_t = a_t h_{t-1} + b_t for every t in parallel, on batch-major [B, L, ...] arrays.

  Returns (h, final_state). ``segment``: steps per sequential run inside the parallel scan (0: a
  pure associative_scan). The time-major form with the arrays transposed in and h out.
  """
  h_LB = linear_scan_time_major(jnp.swapaxes(a, 0, 1), jnp.swapaxes(b, 0, 1), h0, segment)
  return (mask_outputs(jnp.swapaxes(h_LB, 0, 1), lengths_B),
          last_state_time_major(h_LB, h0, lengths_B))


def linear_scan_time_major(a, b, h0=None, segment=SEGMENT):
  """``linear_scan``'s recurrence on time-major [L, B, ...] arrays; returns h time-major.

  The layers' path: their inputs are transposed once (x, small) and their outputs once, while
  every full-size intermediate (projections, gates, the scan and its backward pass) stays
  time-major, where each time step is one contiguous slab.
  """
  a = a.astype(b.dtype)
  if h0 is not None:
    b = b.at[0].add(jnp.broadcast_to(a[0], h0.shape) * h0.astype(b.dtype))
  return scan_time_major(a, b, segment)


def last_state(h_BL, h0, lengths_B):
  """The final state of batch-major h: h at length - 1 (h0, or zeros, when length is 0)."""
  return _last_state(h_BL, h0, lengths_B, time_axis=1)


def last_state_time_major(h_LB, h0, lengths_B):
  """The final state of time-major h: h at length - 1 (h0, or zeros, when length is 0)."""
  return _last_state(h_LB, h0, lengths_B, time_axis=0)


def _last_state(h, h0, lengths_B, time_axis: int):
  """h at length - 1 along ``time_axis`` (0 or 1, the other being the batch; h0 or zeros when the
  length is 0)."""
  if lengths_B is None:
    return jnp.take(h, h.shape[time_axis] - 1, axis=time_axis)
  b = h.shape[1 - time_axis]
  idx = jnp.clip(lengths_B - 1, 0, h.shape[time_axis] - 1)
  last = h[idx, jnp.arange(b)] if time_axis == 0 else h[jnp.arange(b), idx]
  empty = (lengths_B == 0).reshape((b,) + (1,) * (h.ndim - 2))
  return jnp.where(empty, jnp.zeros_like(last) if h0 is None else h0.astype(h.dtype), last)


def mask_outputs(y_BL, lengths_B):
  """Zeros y_BL... at positions t >= length."""
  return _mask_outputs(y_BL, lengths_B, time_axis=1)


def mask_outputs_time_major(y_LB, lengths_B):
  """Zeros time-major y_LB... at positions t >= length."""
  return _mask_outputs(y_LB, lengths_B, time_axis=0)


def _mask_outputs(y, lengths_B, time_axis: int):
  if lengths_B is None:
    return y
  return jnp.where(_valid(lengths_B, y, time_axis), y, jnp.zeros_like(y))


def log_linear_scan(log_a, log_b, h0=None, lengths_B=None, segment=SEGMENT):
  """The same recurrence with a = exp(log_a) in (0, 1], b = exp(log_b) > 0, computed in log space.

  h0 may have any sign: its contribution exp(cumsum(log a)) h0 is added outside the log-space scan.
  """
  h = _log_scan(log_a, log_b, segment)
  if h0 is not None:
    decay = jnp.exp(_cumsum(log_a))
    h = h + decay * h0[:, None].astype(h.dtype)
  return finish(h, h0, lengths_B)


def parallel_scan_log(log_coeffs, log_values):
  """Feng et al. (2024), Listing "parallel_scan_log": log_values[:, 0] is log h0, time axis 1.

  log_coeffs is [B, L, ...], log_values [B, L + 1, ...]; returns h_1..h_L. Exact in real arithmetic,
  but it subtracts the running sum of log a (large at long lengths) from log b and adds it back,
  so float32 loses relative precision roughly as eps * |sum log a|; kept as the paper's reference.
  """
  pad = jnp.zeros_like(log_coeffs[:, :1])
  a_star = _cumsum(jnp.concatenate([pad, log_coeffs], axis=1))
  log_h0_plus_b_star = jax.lax.associative_scan(jnp.logaddexp, log_values - a_star, axis=1)
  return jnp.exp(a_star + log_h0_plus_b_star)[:, 1:]


def sequential_scan(a, b, h0=None, lengths_B=None):
  """The reference: a plain ``lax.scan`` step by step, with a = 1, b = 0 past each end."""
  a = jnp.broadcast_to(a, b.shape).astype(b.dtype)
  if h0 is None:
    h0 = jnp.zeros(b.shape[:1] + b.shape[2:], b.dtype)
  if lengths_B is not None:
    valid = _valid(lengths_B, b)
    a = jnp.where(valid, a, jnp.ones_like(a))
    b = jnp.where(valid, b, jnp.zeros_like(b))

  def step(h, ab):
    a_t, b_t = ab
    h = a_t * h + b_t
    return h, h

  h_last, h_L = jax.lax.scan(step, h0.astype(b.dtype),
                             (jnp.moveaxis(a, 1, 0), jnp.moveaxis(b, 1, 0)))
  h = jnp.moveaxis(h_L, 0, 1)
  if lengths_B is not None:
    h = jnp.where(valid, h, jnp.zeros_like(h))
  return h, h_last


def project(x_BLD, kernel_DW, bias_W, dtype):
  """x W + b in ``dtype`` with float32 accumulation and a float32 result, for the scan."""
  return matmul(x_BLD, kernel_DW, dtype) + bias_W.astype(jnp.float32)[None, None]


def matmul(x_ND, kernel_DW, dtype):
  """x W over x's last axis as one 2-D dot (float32 result).

  XLA:CPU differentiates a 3-D einsum ``bld,dg->blg`` into a weight gradient ~4x slower than the
  same product on [B * L, D] (measured at B = 32, L = 4096); flattening first avoids that.
  """
  x_MD = x_ND.reshape(-1, x_ND.shape[-1]).astype(dtype)
  k_MW = jnp.dot(x_MD, kernel_DW.astype(dtype), preferred_element_type=jnp.float32)
  return k_MW.reshape(x_ND.shape[:-1] + kernel_DW.shape[-1:])

