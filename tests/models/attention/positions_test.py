"""Position encodings against the papers' formulas, written out independently."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.models.attention import positions


@pytest.mark.parametrize("d", [8, 7])
def test_sinusoidal_matches_vaswani(d):
  pe = np.asarray(positions.sinusoidal(jnp.arange(5), d))
  want = np.zeros((5, d))
  for p in range(5):
    for i in range(d):
      angle = p / 10000 ** (2 * (i // 2) / d)
      want[p, i] = np.sin(angle) if i % 2 == 0 else np.cos(angle)
  np.testing.assert_allclose(pe, want, atol=1e-6)


def test_sinusoidal_per_sequence_positions_are_the_rows_of_the_shared_table():
  table = np.asarray(positions.sinusoidal(jnp.arange(9), 6))
  pos = np.array([[2, 3, 4], [5, 6, 7]])
  np.testing.assert_array_equal(positions.sinusoidal(jnp.asarray(pos), 6), table[pos])


def test_learned_adds_table_rows_at_each_sequences_positions():
  mod = positions.LearnedPositions(max_len=6)
  x = jnp.zeros((2, 3, 4))
  params = mod.init(jax.random.PRNGKey(0), x)
  table = params["params"]["embedding"]
  np.testing.assert_allclose(mod.apply(params, x), jnp.broadcast_to(table[:3][None], (2, 3, 4)))
  per_row = mod.apply(params, x, jnp.array([[2, 3, 4], [0, 1, 2]]))
  np.testing.assert_allclose(per_row[0], table[2:5])
  np.testing.assert_allclose(per_row[1], table[0:3])


def test_learned_table_too_short_names_both_lengths():
  mod = positions.LearnedPositions(max_len=4)
  with pytest.raises(ValueError, match=r"length 5.*max_len=4"):
    mod.init(jax.random.PRNGKey(0), jnp.zeros((1, 5, 2)))


def _rope_complex(x, pos, base=10000.0):
  """Su et al. complex form: (x_2i + i x_2i+1) * exp(i * pos * base^(-2i/K))."""
  k = x.shape[-1]
  z = x[..., 0::2] + 1j * x[..., 1::2]
  theta = base ** (-2.0 * np.arange(k // 2) / k)
  z = z * np.exp(1j * pos[None, :, None, None] * theta)
  out = np.zeros_like(x)
  out[..., 0::2], out[..., 1::2] = z.real, z.imag
  return out


def test_rope_matches_complex_rotation():
  x = np.random.RandomState(0).randn(2, 5, 3, 8).astype(np.float32)
  pos = np.arange(5) + 3
  np.testing.assert_allclose(positions.rope(jnp.asarray(x), jnp.asarray(pos)),
                             _rope_complex(x, pos), atol=1e-5)


def test_rope_per_sequence_positions_rotate_each_row_at_its_own():
  x = np.random.RandomState(0).randn(2, 3, 2, 8).astype(np.float32)
  pos = np.array([[0, 1, 2], [4, 5, 6]])
  got = positions.rope(jnp.asarray(x), jnp.asarray(pos))
  for row in range(2):
    np.testing.assert_allclose(got[row:row + 1], _rope_complex(x[row:row + 1], pos[row]),
                               atol=1e-5)


def test_rope_scores_depend_only_on_relative_position():
  rng = np.random.RandomState(1)
  q = jnp.asarray(rng.randn(1, 1, 2, 16), jnp.float32)
  k = jnp.asarray(rng.randn(1, 1, 2, 16), jnp.float32)

  def score(m, n):
    qm = positions.rope(q, jnp.array([m]))
    kn = positions.rope(k, jnp.array([n]))
    return jnp.einsum("blnk,blnk->n", qm, kn)

  base = score(7, 3)
  for shift in (1, 10, 250):
    np.testing.assert_allclose(score(7 + shift, 3 + shift), base, rtol=1e-4, atol=1e-4)
  assert not np.allclose(score(7, 4), base, atol=1e-3)  # and it does depend on the distance


def test_rope_odd_head_dim_raises():
  with pytest.raises(ValueError, match="even head dimension"):
    positions.rope(jnp.zeros((1, 2, 1, 5)), jnp.arange(2))


def test_alibi_slopes_paper_values():
  np.testing.assert_allclose(positions.alibi_slopes(8), [2.0 ** -(i + 1) for i in range(8)])
  # 6 heads: the 4-head slopes 2^-2, 2^-4, 2^-6, 2^-8, then every other 8-head slope: 2^-1, 2^-3.
  np.testing.assert_allclose(positions.alibi_slopes(6),
                             [2 ** -2, 2 ** -4, 2 ** -6, 2 ** -8, 2 ** -1, 2 ** -3])
  np.testing.assert_allclose(positions.alibi_slopes(16), [2.0 ** -(0.5 * (i + 1))
                                                          for i in range(16)], rtol=1e-6)


def test_alibi_bias_is_minus_slope_times_distance():
  bias = np.asarray(positions.alibi_bias(8, jnp.arange(4) + 2, jnp.arange(6)))
  assert bias.shape == (1, 8, 4, 6)
  slopes = positions.alibi_slopes(8)
  for n in range(8):
    for i in range(4):
      for j in range(6):
        assert bias[0, n, i, j] == pytest.approx(-slopes[n] * abs(i + 2 - j))


def test_alibi_bias_per_sequence_positions():
  q, k = np.array([[3, 4], [1, 2]]), np.array([[0, 1, 2, 3], [0, 1, 1, 1]])
  bias = positions.alibi_bias(2, jnp.asarray(q), jnp.asarray(k))
  assert bias.shape == (2, 2, 2, 4)
  for row in range(2):
    np.testing.assert_array_equal(bias[row:row + 1], positions.alibi_bias(
        2, jnp.asarray(q[row]), jnp.asarray(k[row])))


def test_alibi_causal_bias_gives_the_same_causal_weights():
  logits = jax.random.normal(jax.random.PRNGKey(0), (1, 4, 6, 6))
  causal = jnp.tril(jnp.ones((6, 6), bool))[None, None]

  def weights(bias):
    return jax.nn.softmax(jnp.where(causal, logits + bias, -jnp.inf), axis=-1)

  full = weights(positions.alibi_bias(4, jnp.arange(6), jnp.arange(6)))
  shifted = weights(positions.alibi_causal_bias(4, jnp.arange(6)))
  np.testing.assert_allclose(shifted, full, atol=1e-6)


def test_unknown_position_lists_allowed():
  with pytest.raises(ValueError, match="allowed.*sinusoidal.*alibi"):
    positions.check_position("relative")
