"""Causal multi-head linear attention (Katharopoulos et al. 2020, "Transformers are RNNs"):

  o_t = phi(q_t)^T S_t [/ (phi(q_t) . z_t)],  S_t = sum_{s <= t} phi(k_s) v_s^T,  z_t = sum phi(k_s)

per head, with a feature map phi (feature_maps.py: elu1, identity, Based's taylor), then the output
projection. Projections have no biases (as in fla's LinearAttention), so outputs past each
sequence's end are zero.

Decoding: the layer maps (x_BLD, lengths_B, state) -> (y_BLD, final_state_BNKU); run
it on one step at a time (L = 1), passing each call's final state to the next.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from attnlab.models import initializers
from attnlab.models.linear_attention import chunked, feature_maps, fields, recurrent


class LinearAttention(nn.Module):
  """A mixer (models/__init__.py): (x_BLD, lengths_B=None, state=None) -> (y_BLD, final_state_BNKU).

  The state is [K, U] per head: K = the mapped key size, U = D / N (+ 1 with ``normalize``: the
  last column is z). y is in ``dtype``, the state float32.
  """
  num_heads: int  # N; value size per head D / N
  feature_map: str = "elu1"  # one of feature_maps.FEATURE_MAPS
  key_dim: int = 0  # per-head query/key size before phi; 0: D / N (taylor: 16, Based's)
  normalize: bool = True  # divide by phi(q_t) . z_t (the paper's form; for positive maps)
  chunk: int = 64  # time steps per chunk of the chunked form
  impl: str = "fast"  # "fast": chunked.py's chunked form; "reference": recurrent.py, step by step
  dtype: Any = jnp.float32  # compute dtype of the projections and the chunked matmuls
  param_dtype: Any = jnp.float32  # dtype of the stored parameters
  init_scheme: str = initializers.DEFAULT  # dense projections' init (initializers.SCHEMES)

  @nn.compact
  def __call__(self, x_BLD, lengths_B=None, state=None, *, deterministic=True):
    del deterministic  # no dropout inside
    d = x_BLD.shape[-1]
    n = self.num_heads
    fields.check_linear(d, n, self.feature_map, self.key_dim, self.chunk, self.impl)
    kd = fields.default_key_dim(self.feature_map, self.key_dim, d, n)
    u = d // n
    fields.check_inputs("LinearAttention", x_BLD, lengths_B, state,
                        (n, feature_maps.mapped_size(self.feature_map, kd), u + int(self.normalize)))
    dense = lambda size, name: nn.DenseGeneral(  # noqa: E731
        (n, size), use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype, name=name,
        **initializers.linear(self.init_scheme, d))
    phi = lambda x: feature_maps.apply(self.feature_map, x.astype(jnp.float32))  # noqa: E731
    q_BLNK = phi(dense(kd, "query")(x_BLD))
    k_BLNK = phi(dense(kd, "key")(x_BLD))
    v_BLNU = dense(u, "value")(x_BLD)
    kwargs = dict(lengths_B=lengths_B, state_BNKU=state, normalize=self.normalize)
    if self.impl == "fast":
      o_BLNU, state_BNKU = chunked.chunked_form(q_BLNK, k_BLNK, v_BLNU, chunk=self.chunk,
                                                dtype=self.dtype, **kwargs)
    else:
      o_BLNU, state_BNKU = recurrent.recurrent_form(q_BLNK, k_BLNK, v_BLNU, **kwargs)
    y_BLD = nn.DenseGeneral(d, axis=(-2, -1), use_bias=False, dtype=self.dtype,
                            param_dtype=self.param_dtype, name="out",
                            **initializers.linear(self.init_scheme, n * u))(
                                o_BLNU.astype(self.dtype))
    return y_BLD, state_BNKU

  def state_size(self, d_model: int, length: int) -> int:
    """S (and z with ``normalize``): N heads of [mapped key size, D / N (+ 1)], whatever the length."""
    del length
    n = self.num_heads
    kd = fields.default_key_dim(self.feature_map, self.key_dim, d_model, n)
    return n * feature_maps.mapped_size(self.feature_map, kd) * (d_model // n + int(self.normalize))
