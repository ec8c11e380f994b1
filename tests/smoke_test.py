import jax
import jax.numpy as jnp
import numpy as np

from attnlab.models.attention import dot_product as attention


def test_forced_devices():
  assert jax.device_count() == 4


def test_naive_attention_rows_sum_to_one():
  q = jax.random.normal(jax.random.key(0), (2, 5, 4, 8))
  out, w = attention.dot_product_attention(q, q, q, causal=True, return_weights=True)
  assert out.shape == q.shape
  np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-6)
  assert jnp.all(jnp.triu(w[0, 0], 1) == 0)
