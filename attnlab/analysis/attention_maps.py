"""Attention maps: the weights each attention layer sows (``"intermediates"/"attention_weights"``,
``weights_BNLS``) when the model is built with ``capture_attention=True``, drawn per layer and head."""

from __future__ import annotations

import os
import re
from typing import Any, Mapping

import jax
import numpy as np

from attnlab import plotting
from attnlab.models import registry

_SOWN = "attention_weights"


def _collect(tree: Any, path: tuple, out: dict) -> None:
  if isinstance(tree, Mapping):
    for key, value in tree.items():
      _collect(value, path + (str(key),), out)
  elif path and path[-1] == _SOWN:
    for i, weights in enumerate(tree):  # sow appends to a tuple: one entry per call
      name = "/".join(p for p in path[:-1] if p not in ("backbone", "inner"))
      out[name if len(tree) == 1 else f"{name}/call{i}"] = np.asarray(weights)


def capture(model, params, inputs) -> dict[str, np.ndarray]:
  """``{layer path: weights_BNLS}`` for every attention layer of ``model`` on ``inputs``."""
  apply = jax.jit(lambda p, x: model.apply({"params": p}, x, deterministic=True,
                                           mutable=["intermediates"]))
  _, state = apply(params, inputs)
  out: dict[str, np.ndarray] = {}
  _collect(dict(state.get("intermediates", {})), (), out)
  return out


def check_model(model_name: str) -> None:
  if not registry.has_field(model_name, "capture_attention"):
    with_maps = [n for n in registry.MODELS if registry.has_field(n, "capture_attention")]
    raise ValueError(f"--attention_maps: model {model_name!r} has no attention layers; "
                     f"it works for {with_maps}")


def write_maps(weights: Mapping[str, np.ndarray], inputs, out_dir: str,
               num_examples: int) -> list[str]:
  """One PNG per example and layer, a heat map per head; returns the paths."""
  if not weights:
    raise ValueError("the model sowed no attention weights (was it built with capture_attention?)")
  paths = []
  inputs = np.asarray(inputs)
  for e in range(num_examples):
    tokens = inputs[e] if inputs.ndim == 2 else None  # token ids label the axes when short
    for layer, w_BNLS in weights.items():
      safe = re.sub(r"[^A-Za-z0-9_.-]", "_", layer.replace("/", "."))
      paths.append(plotting.attention_heads(
          w_BNLS[e], os.path.join(out_dir, f"example{e}_{safe}.png"),
          title=f"example {e}, {layer} (rows: queries, columns: keys)", tokens=tokens))
  return paths
