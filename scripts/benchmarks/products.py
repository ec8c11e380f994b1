"""The LSTM training step's matrix products alone, XLA:CPU against PyTorch: ``scripts/bench.py
products [--json FILE]``.

attnlab's LSTM (models/rnn/kernel.py) at batch B, length L, input D, hidden H does, per step:

  step       L products [B, D+H] x [D+H, 4H]   forward, one per time step
  step_back  L products [B, 4H] x [4H, H]      backward loop, dh_prev = dg W_hh^T
  dw_hh      [H, L*B] x [L*B, 4H]              after the loop: h^T dg
  dw_ih      [D, L*B] x [L*B, 4H]              after the loop: x^T dg

Each is timed on the same float32 operands as ``jax.jit`` (XLA:CPU) and as PyTorch's ``torch.mm``
(MKL), side by side in interleaved rounds. The per-step products run as a loop that accumulates
them (a ``fori_loop`` in one jitted call; ``addmm_`` in a Python loop), so neither pays a dispatch
per product. ``x_torch`` = PyTorch's median over XLA's (<1: XLA slower); ``lstm_products`` sums
the four. ``lstm_step`` is the whole training step in the same rounds (attnlab's LSTM, as in the
recurrent suite, and ``nn.LSTM``), with ``rest_s`` = the step minus the four products: the gate
arithmetic, the saved factors and the loops (for PyTorch an estimate: oneDNN splits the same FLOPs
differently, the input projection hoisted out of the loop).
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import recurrent, timing, torch_reference
from attnlab.models.rnn.layer import RNN

CASES = ("step", "step_back", "dw_hh", "dw_ih")


def shapes(batch: int, length: int, features: int, hidden: int) -> dict:
  """case -> (count, lhs shape, rhs shape, lhs transposed): ``count`` products lhs @ rhs, or one
  lhs^T @ rhs when transposed (lhs then [rows, K], the layout the weight gradients read)."""
  b, l, d, h = batch, length, features, hidden
  return {"step": (l, (b, d + h), (d + h, 4 * h), False),
          "step_back": (l, (b, 4 * h), (4 * h, h), False),
          "dw_hh": (1, (l * b, h), (l * b, 4 * h), True),
          "dw_ih": (1, (l * b, d), (l * b, 4 * h), True)}


def flops(count: int, lhs: tuple, rhs: tuple, transposed: bool) -> int:
  """Multiply-adds times 2 of ``count`` products of these shapes."""
  m, k = (lhs[1], lhs[0]) if transposed else lhs
  return 2 * count * m * k * rhs[1]


def operands(count: int, lhs: tuple, rhs: tuple, seed: int = 0):
  """Float32 (lhs [count, ...] when count > 1, rhs), standard normal."""
  rng = np.random.default_rng(seed)
  a = rng.standard_normal(((count,) if count > 1 else ()) + lhs, dtype=np.float32)
  return a, rng.standard_normal(rhs, dtype=np.float32)


def reference(a, w, transposed: bool):
  """The product (or sum of products) in float64 numpy."""
  a, w = a.astype(np.float64), w.astype(np.float64)
  if transposed:
    return a.T @ w
  return (a @ w).sum(0) if a.ndim == 3 else a @ w


def jax_product(a, w, transposed: bool):
  """A zero-argument callable returning the product computed by one jitted call."""
  a, w = jnp.asarray(a), jnp.asarray(w)
  if transposed:
    fn = jax.jit(lambda a, w: jnp.dot(a.T, w))
  elif a.ndim == 3:
    fn = jax.jit(lambda a, w: jax.lax.fori_loop(
        0, a.shape[0], lambda i, acc: acc + jnp.dot(a[i], w),
        jnp.zeros((a.shape[1], w.shape[1]), w.dtype)))
  else:
    fn = jax.jit(jnp.dot)
  return lambda: fn(a, w).block_until_ready()


def torch_product(torch, a, w, transposed: bool):
  """The same product with ``torch.mm`` (a Python loop of in-place ``addmm_`` for a stack)."""
  a, w = torch.from_numpy(a), torch.from_numpy(w)
  if transposed:
    return lambda: torch.mm(a.t(), w)
  if a.dim() == 3:
    def run():
      acc = torch.zeros(a.shape[1], w.shape[1])
      for a_i in a:
        acc.addmm_(a_i, w)
      return acc
    return run
  return lambda: torch.mm(a, w)


def _records(table: dict, medians: dict) -> list[dict]:
  records = []
  for case, (count, lhs, rhs, transposed) in table.items():
    gflop = flops(count, lhs, rhs, transposed) / 1e9
    shape = (f"[{lhs[1]},{lhs[0]}]x{list(rhs)}" if transposed
             else f"{count}x {list(lhs)}x{list(rhs)}").replace(" ", "")
    for impl in ("jax", "torch"):
      if (case, impl) in medians:
        sec = medians[(case, impl)][0]
        records.append({"case": case, "impl": impl, "shape": shape, "gflop": gflop,
                        "median_s": sec, "gflop_per_s": gflop / sec})
  for impl in ("jax", "torch"):
    rows = [r for r in records if r["impl"] == impl]
    if len(rows) == len(table):
      gflop, sec = sum(r["gflop"] for r in rows), sum(r["median_s"] for r in rows)
      records.append({"case": "lstm_products", "impl": impl, "shape": "sum", "gflop": gflop,
                      "median_s": sec, "gflop_per_s": gflop / sec})
      if ("lstm_step", impl) in medians:
        step_s = medians[("lstm_step", impl)][0]
        records.append({"case": "lstm_step", "impl": impl, "shape": "training step",
                        "gflop": gflop, "median_s": step_s, "gflop_per_s": gflop / step_s,
                        "rest_s": step_s - sec})
  for rec in records:
    torch_s = [r["median_s"] for r in records if r["case"] == rec["case"] and r["impl"] == "torch"]
    if torch_s:
      rec["x_torch"] = torch_s[0] / rec["median_s"]
  return records


def main(argv: list[str], json_path: str | None) -> list[dict]:
  parser = argparse.ArgumentParser(prog="bench.py products", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--length", type=int, default=256)
  parser.add_argument("--features", type=int, default=64)
  parser.add_argument("--hidden", type=int, default=256)
  parser.add_argument("--repeats", type=int, default=15, help="timed rounds")
  torch_reference.add_flags(parser)
  args = parser.parse_args(argv)
  for name in ("batch", "length", "features", "hidden", "repeats"):
    if getattr(args, name) < 1:
      parser.error(f"--{name} must be a positive integer, got {getattr(args, name)}")
  torch = torch_reference.load(args)
  b, l, d, h = args.batch, args.length, args.features, args.hidden
  table = shapes(b, l, d, h)
  runs = {}
  for case, (count, lhs, rhs, transposed) in table.items():
    a, w = operands(count, lhs, rhs)
    runs[(case, "jax")] = jax_product(a, w, transposed)
    if torch is not None:
      runs[(case, "torch")] = torch_product(torch, a, w, transposed)
  runs[("lstm_step", "jax")] = recurrent.jax_step(RNN(cell="lstm", hidden_size=h), b, l, d)
  if torch is not None:
    runs[("lstm_step", "torch")] = recurrent.torch_step(torch, "LSTM", b, l, d, h)
  records = _records(table, timing.time_interleaved(runs, args.repeats, warmup=2))
  print(f"devices: {jax.devices()}; torch threads: {torch_reference.threads(torch)}; "
        f"rounds: {args.repeats}; batch {b}, length {l}, input {d}, hidden {h}")
  print(timing.format_table(records, ["case", "impl", "shape", "gflop", "median_s", "gflop_per_s",
                                      "x_torch", "rest_s"]))
  if torch is None:
    print("note:", torch_reference.SKIPPED)
  timing.write_json(json_path, records)
  return records
