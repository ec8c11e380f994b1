"""Initialisation schemes: how a model's embedding and dense projections start (``model.init``).

  torch  PyTorch's defaults. ``nn.Embedding``: N(0, 1). ``nn.Linear``: weight and bias
         U(-1/sqrt(fan_in), 1/sqrt(fan_in)). ``nn.MultiheadAttention``: the query/key/value
         projection Xavier-uniform over its fused [3D, D] matrix (bound sqrt(6 / (D + 3D)); with
         grouped key/value heads the fused matrix is [D + 2GK, D]) with zero biases, and the output
         projection an ``nn.Linear`` whose bias starts at zero.
  flax   Flax's defaults, which attnlab used before the field existed (bit for bit): ``nn.Embed``
         N(0, 1/D); ``nn.Dense``/``nn.DenseGeneral`` lecun normal (truncated, std 1/sqrt(fan_in))
         with zero biases, attention's projections included.

Under both, the classic recurrent cells draw PyTorch's U(+-1/sqrt(H)) (``rnn/cells.py``) and layer
norms start at scale 1, bias 0. The families PyTorch lacks keep their papers' initialisation for
their own parameters (LRU's ring and B, C, D; Mamba's A, dt and convolution; Hawk's RG-LRU; the
short convolution's Conv1d bound; the MoE router's N(0, 0.02); learned positions' N(0, 0.02), as in
GPT-2), and the scheme sets their embedding and dense projections. Module fields call the scheme
``init_scheme``: ``init`` is a Linen module's method.

``torch`` is the default because Flax's defaults decided verdicts that belong to the architectures:
with them attnlab's LSTM stays at chance on distance 16 and its decoder on MQAR's recall plateau,
where the same models under PyTorch's initialisation solve both (the README's Initialisation
section has the runs and their commands).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax

SCHEMES = ("torch", "flax")
DEFAULT = "torch"
# What a config.json written before ``model.init`` existed was trained with.
LEGACY = "flax"


def check(scheme: str, field: str = "init") -> None:
  if scheme not in SCHEMES:
    raise ValueError(f"{field}={scheme!r}; allowed: {SCHEMES}")


def uniform(bound: float):
  """U(-bound, bound), PyTorch's ``nn.init.uniform_``."""
  def init(key, shape, dtype=jax.numpy.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


def embedding(scheme: str, std: float = 0.0):
  """The token embedding table's initializer: N(0, std^2) for ``std`` > 0 (the model section's
  ``embed_std``), else the scheme's."""
  check(scheme)
  if std > 0:
    return nn.initializers.normal(std)
  return nn.initializers.normal(1.0) if scheme == "torch" else nn.linear.default_embed_init


def kernel(scheme: str, fan_in: int):
  """A dense projection's weight contracting ``fan_in`` input features."""
  check(scheme)
  return uniform(1.0 / math.sqrt(fan_in)) if scheme == "torch" else nn.initializers.lecun_normal()


def bias(scheme: str, fan_in: int):
  """That projection's bias."""
  check(scheme)
  return uniform(1.0 / math.sqrt(fan_in)) if scheme == "torch" else nn.initializers.zeros_init()


def linear(scheme: str, fan_in: int) -> dict:
  """``kernel_init``/``bias_init`` of an ``nn.Dense``/``nn.DenseGeneral`` reading ``fan_in``
  features (for a DenseGeneral, the product of the contracted axes)."""
  return {"kernel_init": kernel(scheme, fan_in), "bias_init": bias(scheme, fan_in)}


def attention_input(scheme: str, d_model: int, fused_rows: int) -> dict:
  """The query/key/value projections': PyTorch's Xavier bound of the fused [rows, D] in-projection
  (rows = 3D for multi-head attention) and zero biases."""
  check(scheme)
  if scheme == "flax":
    return linear(scheme, d_model)
  return {"kernel_init": uniform(math.sqrt(6.0 / (d_model + fused_rows))),
          "bias_init": nn.initializers.zeros_init()}


def attention_output(scheme: str, fan_in: int) -> dict:
  """The output projection's: an ``nn.Linear`` weight whose bias PyTorch zeroes."""
  return {"kernel_init": kernel(scheme, fan_in), "bias_init": nn.initializers.zeros_init()}
