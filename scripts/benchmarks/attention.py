"""Attention benchmark: forward+backward time and peak memory, one fresh process per configuration.

  python scripts/bench.py attention [--json FILE] [--lengths 256 1024 ...] [--impls naive chunked ...]
      [--causal both|yes|no] [--dtype float32|bfloat16] [--max_gb 16] [--repeats 3] [--rounds 1]
      [--timeout 900] [--quick]

Batch 4, 8 heads, head dim 64, float32 (``--dtype``), loss = sum(out), gradients for q, k, v. ``median_s`` is wall
time, ``cpu_s`` the process CPU time per step (all threads; on a shared machine the steadier figure,
and wall ~ cpu_s / threads in use on an idle one). Each configuration
runs in its own child process so that peak memory is its own: ``peak_mb`` is the child's peak RSS
(``resource.getrusage``) minus the peak RSS of an idle child that imported the same libraries.
Configurations predicted above ``--max_gb`` are skipped, and a child that dies (out of memory) or
exceeds ``--timeout`` is recorded with that status. On a GPU ``device_mb`` is the peak of the
device's own allocator (JAX's ``peak_bytes_in_use``, PyTorch's ``max_memory_allocated``). Impls:
naive, xla, chunked, cudnn (a GPU only: skipped, saying so, elsewhere; bfloat16 or float16), default
(what ``implementation=None`` picks), torch (``torch.nn.functional.scaled_dot_product_attention``,
on the GPU when PyTorch sees one).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from benchmarks import timing

IMPLS = ("naive", "xla", "chunked", "cudnn", "default", "torch")
DTYPES = ("float32", "bfloat16")
# Peak / one f32 [B,N,L,S] buffer, measured at 1024; chunked and cudnn (a fused kernel) keep none.
_LOGITS_FACTOR = {"naive": 6.0, "xla": 7.0}


def _predicted_gb(impl, b, n, l, k):
  """A rough peak-memory estimate, used only to skip configurations that cannot fit."""
  if impl == "default":
    from attnlab.models.attention import dot_product as attention  # lazily: the parent needs no JAX backend otherwise
    import jax
    shape = jax.ShapeDtypeStruct((b, l, n, k), jax.numpy.float32)
    impl = attention.default_implementation(shape, shape, backend="cpu")
  linear = 20 * b * n * l * k * 4  # inputs, outputs, gradients, transposed copies (torch: ~20x too)
  quadratic = _LOGITS_FACTOR.get(impl, 0.0) * b * n * l * l * 4
  return (linear + quadratic) / 2**30


def _child(cfg: dict) -> dict:
  """Runs one configuration in this (fresh) process and returns its record."""
  import resource
  impl, b, n, l, k = cfg["impl"], cfg["batch"], cfg["heads"], cfg["length"], cfg["head_dim"]
  dtype = cfg.get("dtype", "float32")
  if impl.startswith("idle"):
    if impl == "idle_torch":
      import torch  # noqa: F401
      return {"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    import jax
    jax.numpy.zeros(1).block_until_ready()
    return {"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "backend": jax.default_backend()}
  sync, device_mb = timing.block, timing.device_peak_mb
  if impl == "torch":
    import torch
    device = "cuda" if torch.cuda.is_available() else "cpu"
    q, kk, v = (torch.randn(b, n, l, k, dtype=getattr(torch, dtype), device=device,
                            requires_grad=True) for _ in range(3))
    if device == "cuda":
      sync = lambda out: torch.cuda.synchronize()  # noqa: E731
      device_mb = lambda: torch.cuda.max_memory_allocated() / 2**20  # noqa: E731
    else:
      device_mb = lambda: None  # noqa: E731

    def step():
      out = torch.nn.functional.scaled_dot_product_attention(q, kk, v, is_causal=cfg["causal"])
      return torch.autograd.grad(out.sum(), (q, kk, v))
  else:
    import jax
    from attnlab.models.attention import dot_product as attention
    name = None if impl == "default" else impl
    q, kk, v = (jax.random.normal(key, (b, l, n, k), dtype)
                for key in jax.random.split(jax.random.key(0), 3))
    grad = jax.jit(jax.grad(lambda q, k, v: attention.dot_product_attention(
        q, k, v, causal=cfg["causal"], implementation=name).astype(jax.numpy.float32).sum(),
        argnums=(0, 1, 2)))

    def step():
      return grad(q, kk, v)
  sync(step())  # compile and warm up
  cpu0 = time.process_time()
  median, times = timing.median_seconds(step, repeats=cfg["repeats"], warmup=0, sync=sync)
  # CPU seconds (all threads) per step: steadier than wall time on a shared machine.
  cpu_s = (time.process_time() - cpu0) / cfg["repeats"]
  return {"median_s": median, "times": times, "cpu_s": cpu_s, "device_mb": device_mb(),
          "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def spawn(cfg: dict, timeout: float, module: str = "benchmarks.attention") -> dict:
  """Runs ``module``'s child for ``cfg`` in a fresh process; its record, or a failed status."""
  try:
    scripts = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(filter(None, [scripts, os.environ.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-m", module, "--child", json.dumps(cfg)],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": path})
  except subprocess.TimeoutExpired:
    return {"status": "timeout"}
  if proc.returncode != 0:
    err = (proc.stderr.strip().splitlines() or ["?"])[-1]
    oom = proc.returncode in (-9, 137) or "RESOURCE_EXHAUSTED" in proc.stderr or "MemoryError" in err
    return {"status": "oom" if oom else f"error: {err[:120]}"}
  return dict(json.loads(proc.stdout.strip().splitlines()[-1]), status="ok")


def merge(rounds: list[dict], length, causal, impl, opts, idle) -> dict:
  """One record from a configuration's rounds: medians of time, max of peak memory."""
  rec = {"impl": impl, "length": length, "causal": causal, "batch": opts.batch,
         "heads": opts.heads, "head_dim": opts.head_dim, "dtype": getattr(opts, "dtype", "float32"),
         "rounds": len(rounds)}
  ok = [r for r in rounds if r["status"] == "ok"]
  if len(ok) < len(rounds):
    return dict(rec, status=next(r["status"] for r in rounds if r["status"] != "ok"))
  rec.update(median_s=statistics.median(r["median_s"] for r in ok),
             cpu_s=statistics.median(r["cpu_s"] for r in ok),
             round_medians=[r["median_s"] for r in ok], times=[t for r in ok for t in r["times"]],
             peak_mb=max(r["rss_mb"] for r in ok) - idle["torch" if impl == "torch" else "jax"],
             status="ok")
  device = [r["device_mb"] for r in ok if r.get("device_mb") is not None]
  if device:
    rec["device_mb"] = max(device)
  return rec


def main(args: list[str], json_path: str | None) -> list[dict]:
  parser = argparse.ArgumentParser(prog="bench.py attention", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--lengths", type=int, nargs="+", default=[256, 1024, 4096, 16384])
  parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
  parser.add_argument("--causal", choices=("both", "yes", "no"), default="both")
  parser.add_argument("--dtype", choices=DTYPES, default="float32",
                      help="of q, k and v (cudnn needs bfloat16)")
  parser.add_argument("--max_gb", type=float, default=16.0, help="skip configurations predicted above")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--rounds", type=int, default=1,
                      help="fresh processes per configuration, taken in turn (round-robin), so that "
                           "a slow spell of a shared machine hits every implementation alike; the "
                           "table shows medians over rounds")
  parser.add_argument("--timeout", type=float, default=900.0, help="seconds per configuration")
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--heads", type=int, default=8)
  parser.add_argument("--head_dim", type=int, default=64)
  parser.add_argument("--quick", action="store_true", help="lengths 256 1024, one repeat")
  opts = parser.parse_args(args)
  if opts.quick:
    opts.lengths, opts.repeats = [256, 1024], 1
  if "torch" in opts.impls:
    try:
      import torch  # noqa: F401
    except ImportError:
      opts.impls = [i for i in opts.impls if i != "torch"]
  base = {"batch": opts.batch, "heads": opts.heads, "head_dim": opts.head_dim, "length": 1,
          "causal": False, "repeats": 1, "dtype": opts.dtype}
  families = ("jax", "torch") if "torch" in opts.impls else ("jax",)
  idle_runs = {family: spawn(dict(base, impl=f"idle_{family}"), 300) for family in families}
  idle = {"torch": 0.0, **{family: r.get("rss_mb", 0.0) for family, r in idle_runs.items()}}
  backend = idle_runs["jax"].get("backend", "?")

  causals = {"both": (False, True), "yes": (True,), "no": (False,)}[opts.causal]
  configs = [(length, causal, impl) for length in opts.lengths for causal in causals
             for impl in opts.impls]
  runs = {key: [] for key in configs}
  for _ in range(max(opts.rounds, 1)):
    for length, causal, impl in configs:
      done = runs[(length, causal, impl)]
      if done and done[-1]["status"] != "ok":
        continue  # out of memory, time or skipped once: not again
      gb = _predicted_gb(impl, opts.batch, opts.heads, length, opts.head_dim)
      if impl == "cudnn" and backend != "gpu":
        rec = {"status": f"skipped: needs a GPU (backend {backend})"}
      elif gb > opts.max_gb:
        rec = {"status": f"skipped: predicted {gb:.0f} GB > --max_gb {opts.max_gb:g}"}
      else:
        cfg = dict(base, impl=impl, length=length, causal=causal, repeats=opts.repeats)
        rec = spawn(cfg, opts.timeout)
      done.append(rec)
      print(f"  {impl:8s} L={length:6d} causal={causal!s:5s} {rec.get('median_s', '-')} "
            f"{rec.get('rss_mb', '-')} {rec['status']}", file=sys.stderr, flush=True)
  records = [merge(runs[key], *key, opts, idle) for key in configs]

  ref = {(r["length"], r["causal"]): r for r in records if r["impl"] == "torch" and "median_s" in r}
  for r in records:
    t = ref.get((r["length"], r["causal"]))
    if t and "median_s" in r:
      r["time_vs_torch"] = r["median_s"] / t["median_s"]
      r["cpu_vs_torch"] = r["cpu_s"] / t["cpu_s"]
      r["mem_vs_torch"] = r["peak_mb"] / max(t["peak_mb"], 1.0)
  print(f"forward+backward, batch {opts.batch}, {opts.heads} heads, head dim {opts.head_dim}, "
        f"{opts.dtype}, backend {backend};"
        f" median of {opts.repeats} steps, median over {max(opts.rounds, 1)} round(s) of fresh processes;"
        f" peak_mb = child peak RSS - idle child RSS "
        f"(jax {idle['jax']:.0f} MB, torch {idle['torch']:.0f} MB); cpu_s = CPU seconds per step; "
        f"load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
  columns = ["impl", "length", "causal", "median_s", "time_vs_torch", "cpu_s", "cpu_vs_torch",
             "peak_mb", "mem_vs_torch"]
  if any("device_mb" in r for r in records):
    columns.append("device_mb")
  print(timing.format_table(records, columns + ["status"]))
  timing.write_json(json_path, records)
  return records


if __name__ == "__main__":
  if len(sys.argv) == 3 and sys.argv[1] == "--child":
    print(json.dumps(_child(json.loads(sys.argv[2]))))
  else:
    main(sys.argv[1:], None)
