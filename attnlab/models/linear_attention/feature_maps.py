"""Feature maps phi of linear attention: softmax(q k^T) is replaced by phi(q) phi(k)^T.

  elu1      phi(x) = elu(x) + 1 (Katharopoulos et al. 2020): positive, so phi(q) . sum phi(k) > 0
  identity  phi(x) = x (no map: GLA, RetNet)
  taylor    phi(x) = [1, x / K^(1/4), (x (x) x) / (sqrt(2) sqrt(K))] (Arora et al. 2024, Based): the
            second-order Taylor expansion of exp, phi(q) . phi(k) = 1 + s + s^2 / 2 with
            s = q . k / sqrt(K); its size is 1 + K + K^2, so K is kept small (Based: 16)
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

FEATURE_MAPS = ("elu1", "identity", "taylor")
TAYLOR_KEY_DIM = 16  # Based's per-head query/key size before the map


def elu1(x_BLNK):
  return jax.nn.elu(x_BLNK) + 1.0


def identity(x_BLNK):
  return x_BLNK


def taylor(x_BLNK):
  """[1, x / K^(1/4), x (x) x / (sqrt(2) sqrt(K))] over the last axis (all K^2 products, as Based)."""
  k = x_BLNK.shape[-1]
  outer = (x_BLNK[..., :, None] * x_BLNK[..., None, :]).reshape(x_BLNK.shape[:-1] + (k * k,))
  return jnp.concatenate([jnp.ones_like(x_BLNK[..., :1]), x_BLNK / k ** 0.25,
                          outer / (math.sqrt(2.0) * math.sqrt(k))], axis=-1)


def apply(name: str, x_BLNK):
  return {"elu1": elu1, "identity": identity, "taylor": taylor}[name](x_BLNK)


def mapped_size(name: str, key_dim: int) -> int:
  """The size of phi(x) for x of size ``key_dim``."""
  return 1 + key_dim + key_dim ** 2 if name == "taylor" else key_dim
