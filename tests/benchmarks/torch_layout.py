"""Where each parameter of attnlab's task models sits in the benchmark's PyTorch models
(``scripts/benchmarks/experiment.py``'s ``torch_model``), in both directions.

``entries(params, name)`` lists (attnlab path, torch state_dict key, attnlab -> torch, torch ->
attnlab) for an LSTM/GRU/RNN task model (attnlab keeps PyTorch's names and shapes) or a
Transformer (the query/key/value kernels are PyTorch's fused in-projection, [D, N, K] each).
"""

from __future__ import annotations

import numpy as np

from benchmarks import experiment


def _t(x):
  return np.asarray(x, np.float32).T


def entries(params, name: str) -> list[tuple[tuple, str, object, object]]:
  if "input_proj" in params:  # feature inputs (the adding problem): a Linear, not an Embedding
    out = [(("input_proj", "kernel"), "input_proj.weight", _t, _t),
           (("input_proj", "bias"), "input_proj.bias", np.asarray, np.asarray)]
  else:
    out = [(("embed", "embedding"), "embed.weight", np.asarray, np.asarray)]
  out += [(("head", "kernel"), "head.weight", _t, _t),
         (("head", "bias"), "head.bias", np.asarray, np.asarray)]
  if name not in experiment.TRANSFORMERS:
    return out + [(("backbone", "rnn", k), "body." + k, np.asarray, np.asarray)
                  for k in params["backbone"]["rnn"]]
  kind = "decoder" if name == "decoder" else "encoder"
  stack = params["backbone"][kind]["stack"]
  d = params["embed"]["embedding"].shape[1]
  blocks = sorted((k for k in stack if k.startswith("block_")), key=lambda k: int(k[6:]))
  for i, block in enumerate(blocks):
    at, pre = ("backbone", kind, "stack", block), f"body.layers.{i}."
    att = at + ("self_attention",)
    for j, p in enumerate(("query", "key", "value")):
      rows = slice(j * d, (j + 1) * d)
      # The fused in-projection's rows j*D..(j+1)*D are this projection, as [out, in].
      out.append((att + (p, "kernel"), (pre + "self_attn.in_proj_weight", rows),
                  lambda x: np.asarray(x).reshape(d, d).T,
                  lambda w, s=stack[block]["self_attention"][p]["kernel"].shape:
                  np.asarray(w).T.reshape(s)))
      out.append((att + (p, "bias"), (pre + "self_attn.in_proj_bias", rows),
                  lambda x: np.asarray(x).reshape(d),
                  lambda w, s=stack[block]["self_attention"][p]["bias"].shape:
                  np.asarray(w).reshape(s)))
    out.append((att + ("out", "kernel"), pre + "self_attn.out_proj.weight",
                lambda x: np.asarray(x).reshape(d, d).T,
                lambda w, s=stack[block]["self_attention"]["out"]["kernel"].shape:
                np.asarray(w).T.reshape(s)))
    out.append((att + ("out", "bias"), pre + "self_attn.out_proj.bias", np.asarray, np.asarray))
    for ours, theirs in (("wi", "linear1"), ("wo", "linear2")):
      out.append((at + ("ffn", ours, "kernel"), pre + theirs + ".weight", _t, _t))
      out.append((at + ("ffn", ours, "bias"), pre + theirs + ".bias", np.asarray, np.asarray))
    for ours, theirs in (("ln_self", "norm1"), ("ln_ffn", "norm2")):
      out.append((at + (ours, "scale"), pre + theirs + ".weight", np.asarray, np.asarray))
      out.append((at + (ours, "bias"), pre + theirs + ".bias", np.asarray, np.asarray))
  final = ("backbone", kind, "stack", "ln_final")
  return out + [(final + ("scale",), "body.norm.weight", np.asarray, np.asarray),
                (final + ("bias",), "body.norm.bias", np.asarray, np.asarray)]


def _get(tree, path):
  for k in path:
    tree = tree[k]
  return tree


def to_torch(params, name: str) -> dict[str, np.ndarray]:
  """attnlab's parameters as the torch model's state_dict (float32 NumPy)."""
  state: dict[str, list] = {}
  for path, key, forward, _ in entries(params, name):
    key = key[0] if isinstance(key, tuple) else key
    state.setdefault(key, []).append(np.asarray(forward(_get(params, path)), np.float32))
  return {k: v[0] if len(v) == 1 else np.concatenate(v) for k, v in state.items()}


def from_torch(state, params, name: str):
  """The torch model's state_dict (tensors or arrays) as attnlab parameters shaped like ``params``."""
  state = {k: np.asarray(v.detach().numpy() if hasattr(v, "detach") else v, np.float32)
           for k, v in state.items()}
  out = {}
  for path, key, _, backward in entries(params, name):
    value = state[key[0]][key[1]] if isinstance(key, tuple) else state[key]
    node = out
    for k in path[:-1]:
      node = node.setdefault(k, {})
    node[path[-1]] = np.asarray(backward(value), np.float32)
  return out


def torch_tensors(state, params, name: str) -> dict[tuple, np.ndarray]:
  """{attnlab path: the torch model's matching tensor, in attnlab's layout} (a fused in-projection
  split into its three parts)."""
  unpacked = from_torch(state, params, name)
  return {path: _get(unpacked, path) for path, _, _, _ in entries(params, name)}
