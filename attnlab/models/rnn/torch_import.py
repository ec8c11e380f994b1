"""Import a PyTorch ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` into an equivalent attnlab ``RNN``.

  torch_lstm = torch.nn.LSTM(64, 256, num_layers=2, bidirectional=True, batch_first=True)
  layer = rnn_from_torch(torch_lstm)            # RNN(cell="lstm", hidden_size=256, ...)
  variables = import_torch_rnn(torch_lstm)      # {"params": {"weight_ih_l0": ..., ...}}
  y_BLH, (h, c) = layer.apply(variables, x_BLD, lengths_B)  # h, c: [B, layers * dirs, H]

attnlab's parameters have PyTorch's ``state_dict`` names and shapes, so the import is a copy. The
attnlab layer is always batch-first: for a module built with ``batch_first=False`` transpose the
inputs ``[L, B, D] -> [B, L, D]`` (the weights do not depend on it). Its state is batch first,
[B, num_layers * num_directions, H]: PyTorch's ``h0``/``c0`` and ``h_n``/``c_n`` with their first two
axes swapped. torch is imported
only by the caller; this module never imports it.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from attnlab.models.rnn import layer

# torch module ``mode`` -> attnlab cell name.
TORCH_MODES = {"RNN_TANH": "rnn_tanh", "RNN_RELU": "rnn_relu", "LSTM": "lstm", "GRU": "gru"}


def rnn_config(module) -> dict[str, Any]:
  """The ``RNN`` fields equivalent to a torch RNN/LSTM/GRU module (ValueError if unsupported)."""
  mode = getattr(module, "mode", None)
  if mode not in TORCH_MODES:
    raise ValueError(f"module must be a torch nn.RNN, nn.LSTM or nn.GRU (mode in {sorted(TORCH_MODES)}); "
                     f"got {type(module).__name__} with mode {mode!r}")
  if getattr(module, "proj_size", 0):
    raise ValueError(f"LSTM proj_size must be 0 (projections are not supported); got {module.proj_size}")
  return {
      "cell": TORCH_MODES[mode],
      "hidden_size": int(module.hidden_size),
      "num_layers": int(module.num_layers),
      "bidirectional": bool(module.bidirectional),
      "dropout_rate": float(module.dropout),
  }


def rnn_from_torch(module, **overrides) -> layer.RNN:
  """An attnlab ``RNN`` configured like ``module``; ``overrides`` set other fields (dtype, ...)."""
  return layer.RNN(**{**rnn_config(module), **overrides})


def import_torch_rnn(module, param_dtype=jnp.float32) -> dict[str, dict[str, jnp.ndarray]]:
  """``{"params": ...}`` for ``rnn_from_torch(module)``; missing biases (bias=False) become zeros."""
  config = rnn_config(module)
  state = {k: v.detach().cpu().float().numpy() for k, v in module.state_dict().items()}
  gates = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}[config["cell"]]
  rows = gates * config["hidden_size"]
  params = {}
  for layer in range(config["num_layers"]):
    for suffix in ("", "_reverse") if config["bidirectional"] else ("",):
      for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        key = f"{name}_l{layer}{suffix}"
        value = state.get(key, np.zeros((rows,), np.float32))
        params[key] = jnp.asarray(value, param_dtype)
  return {"params": params}
