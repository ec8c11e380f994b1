"""RNN layer: step-by-step equals the sequence layer, padding, reverse, jit, VJP, bf16, bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models.rnn import cells
from attnlab.models.rnn.layer import RNN, reverse_prefix_BL

B, L, D, H = 3, 6, 5, 4
KINDS = ("rnn_tanh", "rnn_relu", "lstm", "gru")


def _x(seed=0, shape=(B, L, D)):
  return jax.random.normal(jax.random.PRNGKey(seed), shape)


def _step_by_step(kind, params, suffix, x_BLD, carry, lengths_B=None, reverse=False):
  """Independent reference: a Python loop of single cell steps with explicit masks."""
  layer = {k: params[f"{k}{suffix}"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
  lengths = np.full((x_BLD.shape[0],), x_BLD.shape[1]) if lengths_B is None else np.asarray(lengths_B)
  ys = np.zeros(x_BLD.shape[:2] + (H,), np.float32)
  carry = tuple(np.asarray(c) for c in carry)
  for b in range(x_BLD.shape[0]):
    c_b = tuple(c[b:b + 1] for c in carry)
    order = range(lengths[b])
    for t in (reversed(order) if reverse else order):
      c_b, y = cells.step(kind, layer, c_b, x_BLD[b:b + 1, t])
      ys[b, t] = np.asarray(y[0])
    carry = tuple(np.concatenate([c[:b], np.asarray(n), c[b + 1:]]) for c, n in zip(carry, c_b))
  return ys, carry


@pytest.mark.parametrize("kind", KINDS)
def test_step_by_step_equals_layer(kind):
  model = RNN(cell=kind, hidden_size=H)
  x = _x(1)
  lengths = jnp.array([6, 2, 0])
  n_carry = cells.KINDS[kind][1]
  h0 = tuple(jax.random.normal(jax.random.PRNGKey(9 + i), (B, 1, H)) for i in range(n_carry))
  initial = h0 if kind == "lstm" else h0[0]
  params = model.init(jax.random.PRNGKey(2), x)
  y, final = model.apply(params, x, lengths, initial)
  want_y, want_carry = _step_by_step(kind, params["params"], "_l0", x, tuple(c[:, 0] for c in h0),
                                     lengths)
  np.testing.assert_allclose(y, want_y, atol=1e-5)
  final = final if kind == "lstm" else (final,)
  for got, want in zip(final, want_carry):
    np.testing.assert_allclose(got[:, 0], want, atol=1e-5)


def test_reverse_and_bidirectional_respect_lengths():
  model = RNN(cell="lstm", hidden_size=H, bidirectional=True)
  x = _x(3)
  lengths = jnp.array([6, 4, 1])
  params = model.init(jax.random.PRNGKey(4), x)
  p = params["params"]
  zeros = (np.zeros((B, H), np.float32),) * 2
  y, (h, c) = model.apply(params, x, lengths)
  fwd_y, fwd_c = _step_by_step("lstm", p, "_l0", x, zeros, lengths)
  bwd_y, bwd_c = _step_by_step("lstm", p, "_l0_reverse", x, zeros, lengths, reverse=True)
  np.testing.assert_allclose(y, np.concatenate([fwd_y, bwd_y], -1), atol=1e-5)
  np.testing.assert_allclose(h, np.stack([fwd_c[0], bwd_c[0]], axis=1), atol=1e-5)
  np.testing.assert_allclose(c, np.stack([fwd_c[1], bwd_c[1]], axis=1), atol=1e-5)
  # reverse=True runs the first direction backwards and the second forwards.
  y_rev, _ = model.apply(params, x, lengths, reverse=True)
  want_first, _ = _step_by_step("lstm", p, "_l0", x, zeros, lengths, reverse=True)
  want_second, _ = _step_by_step("lstm", p, "_l0_reverse", x, zeros, lengths)
  np.testing.assert_allclose(y_rev, np.concatenate([want_first, want_second], -1), atol=1e-5)


def test_reverse_prefix_is_an_involution():
  x = jnp.arange(2 * 5).reshape(2, 5)
  r = reverse_prefix_BL(x, jnp.array([3, 5]))
  np.testing.assert_array_equal(r, [[2, 1, 0, 3, 4], [9, 8, 7, 6, 5]])
  np.testing.assert_array_equal(reverse_prefix_BL(r, jnp.array([3, 5])), x)


def test_padding_does_not_leak_and_jit_equals_no_jit():
  model = RNN(cell="gru", hidden_size=H, num_layers=2, bidirectional=True)
  x = _x(5)
  lengths = jnp.array([6, 3, 2])
  params = model.init(jax.random.PRNGKey(6), x)
  apply = jax.jit(lambda p, x, n: model.apply(p, x, n))
  y, h = apply(params, x, lengths)
  y_nojit, h_nojit = model.apply(params, x, lengths)
  np.testing.assert_allclose(y, y_nojit, atol=1e-6)
  np.testing.assert_allclose(h, h_nojit, atol=1e-6)
  # Garbage after each sequence's end changes nothing, and outputs there are zero.
  pad_L = jnp.arange(L)[None, :, None] >= lengths[:, None, None]
  x2 = jnp.where(pad_L, 100.0 * _x(7), x)
  y2, h2 = apply(params, x2, lengths)
  np.testing.assert_allclose(y2, y, atol=1e-6)
  np.testing.assert_allclose(h2, h, atol=1e-6)
  assert float(jnp.max(jnp.abs(jnp.where(pad_L, y, 0.0)))) == 0.0


@pytest.mark.parametrize("kind", ("lstm", "gru"))
def test_custom_vjp_equals_autodiff(kind):
  x = _x(8)
  lengths = jnp.array([6, 3, 0])
  fast = RNN(cell=kind, hidden_size=H)
  plain = RNN(cell=kind, hidden_size=H, impl="reference", unroll=2)
  params = fast.init(jax.random.PRNGKey(9), x)
  n_carry = cells.KINDS[kind][1]
  carry0 = tuple(jax.random.normal(jax.random.PRNGKey(20 + i), (B, 1, H)) for i in range(n_carry))

  def loss(model):
    def f(p, x, carry0):
      y, final = model.apply(p, x, lengths, carry0 if kind == "lstm" else carry0[0])
      final = final if kind == "lstm" else (final,)
      return jnp.sum(jnp.sin(y)) + sum(jnp.sum(jnp.cos(c)) for c in final)
    return jax.grad(f, argnums=(0, 1, 2))(params, x, carry0)

  for got, want in zip(jax.tree_util.tree_leaves(loss(fast)), jax.tree_util.tree_leaves(loss(plain))):
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_bf16_compute_close_to_float32():
  x = _x(10, (B, 16, D))
  model32 = RNN(cell="lstm", hidden_size=H)
  model16 = RNN(cell="lstm", hidden_size=H, dtype=jnp.bfloat16)
  params = model32.init(jax.random.PRNGKey(11), x)
  y32, _ = model32.apply(params, x)
  y16, (h16, _) = model16.apply(params, x)
  assert y16.dtype == jnp.bfloat16 and h16.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(y16, np.float32), y32, atol=3e-2)
  grads = jax.grad(lambda p: jnp.sum(model16.apply(p, x)[0].astype(jnp.float32)))(params)
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree_util.tree_leaves(grads))
  bf16_params = RNN(cell="gru", hidden_size=H, param_dtype=jnp.bfloat16,
                    dtype=jnp.bfloat16).init(jax.random.PRNGKey(0), x)
  assert all(p.dtype == jnp.bfloat16 for p in jax.tree_util.tree_leaves(bf16_params))


def test_dropout_only_between_layers():
  x = _x(12)
  rngs = {"dropout": jax.random.PRNGKey(13)}
  one = RNN(cell="rnn", hidden_size=H, dropout_rate=0.5)
  params = one.init(jax.random.PRNGKey(14), x)
  np.testing.assert_allclose(one.apply(params, x, deterministic=False, rngs=rngs)[0],
                             one.apply(params, x)[0])
  two = RNN(cell="rnn", hidden_size=H, num_layers=2, dropout_rate=0.5)
  params = two.init(jax.random.PRNGKey(14), x)
  y_train = two.apply(params, x, deterministic=False, rngs=rngs)[0]
  assert not np.allclose(y_train, two.apply(params, x)[0])


def test_bad_input_raises_value_error():
  x = _x(0)
  model = RNN(cell="lstm", hidden_size=H)
  params = model.init(jax.random.PRNGKey(0), x)
  with pytest.raises(ValueError, match=r"rank 3 \[batch, length, features\]; got shape \(3, 6\)"):
    model.apply(params, x[..., 0])
  with pytest.raises(ValueError, match="feature size 7 does not match the parameters, which expect 5"):
    model.apply(params, _x(0, (B, L, 7)))
  with pytest.raises(ValueError, match=r"lengths must lie in \[0, 6\].*got min -1"):
    model.apply(params, x, jnp.array([1, -1, 2]))
  with pytest.raises(ValueError, match=r"lengths must lie in \[0, 6\].*max 7"):
    model.apply(params, x, jnp.array([7, 1, 2]))
  with pytest.raises(ValueError, match=r"lengths must have shape \[batch\]"):
    model.apply(params, x, jnp.array([1, 2]))
  with pytest.raises(ValueError, match=r"cell must be one of .*got 'lstn'"):
    RNN(cell="lstn", hidden_size=H).init(jax.random.PRNGKey(0), x)
  with pytest.raises(ValueError, match=r"state for an LSTM must be a tuple"):
    model.apply(params, x, None, jnp.zeros((B, 1, H)))
  with pytest.raises(ValueError, match=r"state entries must have shape .*\[3, 1, 4\]"):
    model.apply(params, x, None, (jnp.zeros((B, 2, H)), jnp.zeros((B, 2, H))))
  with pytest.raises(ValueError, match=r"RNN impl='cuda'; allowed: \('fast', 'reference'\)"):
    RNN(cell="gru", hidden_size=H, impl="cuda").init(jax.random.PRNGKey(0), x)
  with pytest.raises(ValueError, match="num_layers must be an int >= 1; got 0"):
    RNN(cell="gru", hidden_size=H, num_layers=0).init(jax.random.PRNGKey(0), x)


@pytest.mark.parametrize("forget_bias", [1.0, -0.5])
def test_forget_bias_starts_where_asked(forget_bias):
  model = RNN(cell="lstm", hidden_size=H, num_layers=2, bidirectional=True,
              forget_bias=forget_bias)
  params = model.init(jax.random.PRNGKey(0), _x(1))["params"]
  plain = RNN(cell="lstm", hidden_size=H, num_layers=2, bidirectional=True).init(
      jax.random.PRNGKey(0), _x(1))["params"]
  for suffix in ("_l0", "_l0_reverse", "_l1", "_l1_reverse"):
    b_ih, b_hh = params[f"bias_ih{suffix}"], params[f"bias_hh{suffix}"]
    np.testing.assert_allclose(b_ih[H:2 * H] + b_hh[H:2 * H], forget_bias)
    for gate in (slice(0, H), slice(2 * H, 4 * H)):  # the other gates keep PyTorch's init
      np.testing.assert_array_equal(b_ih[gate], plain[f"bias_ih{suffix}"][gate])
    np.testing.assert_array_equal(params[f"weight_hh{suffix}"], plain[f"weight_hh{suffix}"])


def test_forget_bias_is_for_the_lstm():
  with pytest.raises(ValueError, match="forget_bias.*LSTM only"):
    RNN(cell="gru", hidden_size=H, forget_bias=1.0).init(jax.random.PRNGKey(0), _x(1))
