"""The answers to attention's quadratic cost, against softmax attention, at long lengths.

  python scripts/bench.py long_context [--json FILE] [--lengths 1024 4096 16384]
      [--layers softmax window linear gla retnet deltanet mamba hawk gla_proj mamba_proj
                mamba2 gated_deltanet mlstm slstm]
      [--window 512] [--dtype float32|bfloat16]
      [--repeats 2] [--rounds 1] [--timeout 1200]

The training step (forward and backward: gradients of sum(y) for the layer's parameters and its
input) of each sequence-mixing layer at batch 4, d_model 512 (8 heads of 64), float32 (``--dtype
bfloat16``: the layers compute in bfloat16, parameters stay float32), each configuration in a fresh
process (so that peak memory is its own: the child's peak RSS minus an idle child's; on a GPU
``device_mb``, the device allocator's peak). ``softmax`` is attnlab's causal ``MultiHeadAttention`` with the default attention
implementation, the reference every ratio is taken against (``vs_softmax``: its time over the
layer's, so >1 is faster); ``window`` the same with a sliding window; ``linear`` (elu+1),
``gla`` (data-dependent decay), ``retnet`` (fixed decay), ``deltanet``, ``mamba`` (the Mamba block,
expand 2, state 16), ``hawk`` (Hawk's recurrent block), ``mamba2`` (the Mamba-2 block, expand 2,
heads of 64 channels, state 64), ``gated_deltanet``, ``mlstm`` (the mLSTM layer, expand 2) and
``slstm`` (the sLSTM layer). ``growth`` is each layer's time ratio from one length to the next
(x4 per step of the default lengths: linear would be 4).

``gla_proj`` and ``mamba_proj`` are bounds, not models: GLA's and the Mamba block's projections
alone (the same matrix products, forward and backward), their sequence mixing left out. Their
``vs_softmax`` is the most the layer could reach if its mixing cost nothing; the layer's time minus
theirs is what the mixing costs.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from typing import Any

from benchmarks import attention as attention_suite
from benchmarks import timing

LAYERS = ("softmax", "window", "linear", "gla", "retnet", "deltanet", "mamba", "hawk",
          "gla_proj", "mamba_proj", "mamba2", "gated_deltanet", "mlstm", "slstm")


def _projections(name: str):
  """GLA's or the Mamba block's projections alone, y_BLD from x_BLD: every dot of the layer (forward
  and backward), each output summed into the last dot's input so that every gradient is computed,
  the sequence mixing left out."""
  import flax.linen as nn

  class GLAProjections(nn.Module):
    dtype: Any = None  # compute dtype (None: the input's)

    @nn.compact
    def __call__(self, x):  # query, key, value, output gate D -> D; the decay D -> 16 -> D; out
      d = x.shape[-1]
      dense = functools.partial(nn.Dense, use_bias=False, dtype=self.dtype)
      hs = [dense(d)(x) for _ in range(4)]
      decay = dense(d)(dense(16)(x))
      return dense(d)(sum(hs) + decay), None  # (y, state) like a mixer

  class MambaProjections(nn.Module):
    dtype: Any = None  # compute dtype (None: the input's)

    @nn.compact
    def __call__(self, x):  # H = 2D, state 16, dt rank D / 16: in D -> 2H, x H -> rank + 32,
      d = x.shape[-1]       # dt rank -> H, out H -> D
      rank = -(-d // 16)
      dense = functools.partial(nn.Dense, use_bias=False, dtype=self.dtype)
      xz = dense(4 * d)(x)
      u, z = xz[..., :2 * d], xz[..., 2 * d:]
      w = dense(rank + 32)(u)
      dt = dense(2 * d)(w[..., :rank])
      return dense(d)(u + dt + z + w[..., rank:rank + 1]), None  # (y, state) like a mixer

  return {"gla_proj": GLAProjections, "mamba_proj": MambaProjections}[name]()


def make_layer(name: str, heads: int, window: int, dtype: str = "float32"):
  """The layer ``name`` computing in ``dtype`` (module-level imports would make the parent load
  JAX)."""
  import jax.numpy as jnp
  from attnlab.models.attention.multi_head import MultiHeadAttention
  from attnlab.models.hawk.block import HawkBlock
  from attnlab.models.linear_attention.deltanet import DeltaNet
  from attnlab.models.linear_attention.gated import GatedLinearAttention
  from attnlab.models.linear_attention.linear import LinearAttention
  from attnlab.models.linear_attention.gated_deltanet import GatedDeltaNet
  from attnlab.models.mamba.block import MambaBlock
  from attnlab.models.mamba2.block import Mamba2Block
  from attnlab.models.xlstm.mlstm_layer import MLSTMLayer
  from attnlab.models.xlstm.slstm import SLSTMLayer
  return {"softmax": lambda: MultiHeadAttention(num_heads=heads, causal=True),
          "window": lambda: MultiHeadAttention(num_heads=heads, causal=True, window=window),
          "linear": lambda: LinearAttention(num_heads=heads),
          "gla": lambda: GatedLinearAttention(num_heads=heads, decay="data"),
          "retnet": lambda: GatedLinearAttention(num_heads=heads, decay="fixed"),
          "deltanet": lambda: DeltaNet(num_heads=heads),
          "mamba": lambda: MambaBlock(),
          "hawk": lambda: HawkBlock(num_heads=heads),
          "gla_proj": lambda: _projections("gla_proj"),
          "mamba_proj": lambda: _projections("mamba_proj"),
          "mamba2": lambda: Mamba2Block(num_heads=2 * heads),  # head size d_model / heads
          "gated_deltanet": lambda: GatedDeltaNet(num_heads=heads),
          "mlstm": lambda: MLSTMLayer(num_heads=heads),
          "slstm": lambda: SLSTMLayer(num_heads=heads)}[name]().clone(dtype=getattr(jnp, dtype))


def _child(cfg: dict) -> dict:
  import resource
  import jax
  import jax.numpy as jnp
  if cfg["impl"] == "idle":
    jnp.zeros(1).block_until_ready()
    return {"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
  dtype = cfg.get("dtype", "float32")
  layer = make_layer(cfg["impl"], cfg["heads"], cfg["window"], dtype)
  x = jax.random.normal(jax.random.key(0), (cfg["batch"], cfg["length"], cfg["d_model"]), dtype)
  params = jax.jit(layer.init)(jax.random.key(1), x[:, :8])

  def loss(p, x):
    y, _ = layer.apply(p, x)  # every mixer returns (y_BLD, state)
    return jnp.sum(y.astype(jnp.float32))

  grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
  step = lambda: grad(params, x)  # noqa: E731
  timing.block(step())  # compile and warm up
  cpu0 = time.process_time()
  median, times = timing.median_seconds(step, repeats=cfg["repeats"], warmup=0)
  return {"median_s": median, "times": times, "device_mb": timing.device_peak_mb(),
          "cpu_s": (time.process_time() - cpu0) / cfg["repeats"],
          "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(args: list[str], json_path: str | None) -> list[dict]:
  parser = argparse.ArgumentParser(prog="bench.py long_context", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384])
  parser.add_argument("--layers", nargs="+", default=list(LAYERS), choices=LAYERS)
  parser.add_argument("--window", type=int, default=512)
  parser.add_argument("--dtype", choices=attention_suite.DTYPES, default="float32")
  parser.add_argument("--repeats", type=int, default=2)
  parser.add_argument("--rounds", type=int, default=1)
  parser.add_argument("--timeout", type=float, default=1200.0)
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--heads", type=int, default=8)
  parser.add_argument("--head_dim", type=int, default=64)
  opts = parser.parse_args(args)
  if min(opts.lengths) < 1 or opts.window < 1 or opts.repeats < 1:
    raise SystemExit("bench.py long_context: --lengths, --window and --repeats must be >= 1")
  base = {"batch": opts.batch, "heads": opts.heads, "d_model": opts.heads * opts.head_dim,
          "window": opts.window, "repeats": opts.repeats, "dtype": opts.dtype}
  module = "benchmarks.long_context"
  idle = attention_suite.spawn(dict(base, impl="idle", length=1), 300, module).get("rss_mb", 0.0)
  configs = [(length, layer) for length in opts.lengths for layer in opts.layers]
  runs = {key: [] for key in configs}
  for _ in range(max(opts.rounds, 1)):
    for length, layer in configs:
      if runs[(length, layer)] and runs[(length, layer)][-1]["status"] != "ok":
        continue
      rec = attention_suite.spawn(dict(base, impl=layer, length=length), opts.timeout, module)
      runs[(length, layer)].append(rec)
      print(f"  {layer:8s} L={length:6d} {rec.get('median_s', '-')} {rec.get('rss_mb', '-')} "
            f"{rec['status']}", file=sys.stderr, flush=True)
  opts.head_dim = opts.head_dim  # merge() reads batch, heads and head_dim
  records = [attention_suite.merge(runs[(n, layer)], n, True, layer, opts,
                                   {"jax": idle, "torch": idle}) for n, layer in configs]
  by = {(r["impl"], r["length"]): r for r in records if r.get("status") == "ok"}
  for r in records:
    ref = by.get(("softmax", r["length"]))
    if r.get("status") == "ok" and ref:
      r["vs_softmax"] = ref["median_s"] / r["median_s"]
    prev = [n for n in opts.lengths if n < r["length"]]
    if r.get("status") == "ok" and prev and (r["impl"], prev[-1]) in by:
      r["growth"] = r["median_s"] / by[(r["impl"], prev[-1])]["median_s"]
  print(f"forward+backward of each layer, batch {opts.batch}, d_model {base['d_model']} "
        f"({opts.heads} heads), {opts.dtype}, window {opts.window}; median of {opts.repeats} steps; "
        f"peak_mb = child peak RSS - idle child's ({idle:.0f} MB); "
        f"{time.strftime('%Y-%m-%d %H:%M')}, load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
  device = ["device_mb"] if any("device_mb" in r for r in records) else []
  print(timing.format_table(records, ["impl", "length", "median_s", "vs_softmax", "growth",
                                      "cpu_s", "peak_mb"] + device + ["status"]))
  timing.write_json(json_path, records)
  return records


if __name__ == "__main__":
  if len(sys.argv) == 3 and sys.argv[1] == "--child":
    print(json.dumps(_child(json.loads(sys.argv[2]))))
  else:
    main(sys.argv[1:], None)
