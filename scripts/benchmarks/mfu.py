"""Model FLOPs utilisation (MFU) of the Transformer's training step: model FLOPs per second over
the card's bf16 peak.

  python scripts/bench.py mfu [--json FILE] [--model decoder] [--d_model 2048] [--num_layers 4]
      [--num_heads 16] [--length 2048] [--batch 16] [--dtype bfloat16] [--steps 10]
      [--matmul 8192]

One jitted ``train_step`` (the trainer's own: AdamW, clipping, the copy task's loss; the batch made
once, outside the step) with the default attention implementation (cuDNN on a GPU in bfloat16).
Model FLOPs per step are PaLM's count (Chowdhery et al. 2022, appendix B): per token
6 N + 12 n_layers d_model L, N the parameters outside the embedding table, causal masking not
discounted; times batch x length tokens. ``mfu`` is model FLOPs/s over the card's dense bf16 peak
(``PEAK_TFLOPS``, NVIDIA's datasheets; ``unknown`` for any other device). ``matmul_tflops`` is a
bf16 matrix product of size ``--matmul`` measured in the same process, what the card gives in
practice; ``vs_matmul`` is the step's model FLOPs/s over it.
"""

from __future__ import annotations

import argparse
import os
import time

from benchmarks import timing

# Dense (no sparsity) bf16 tensor-core peaks, TFLOP/s, by a substring of ``device_kind``; the
# first match wins, so the longer names come first.
PEAK_TFLOPS = (
    ("H200 NVL", 835.5),
    ("H200", 989.4),
    ("H100 NVL", 835.5),
    ("H100 PCIe", 756.5),
    ("H100", 989.4),  # SXM ("NVIDIA H100 80GB HBM3")
)
_DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "experiments", "base.py")


def peak_tflops(device_kind: str) -> float | None:
  """The card's dense bf16 peak in TFLOP/s, or None for a device not in the table."""
  for name, tflops in PEAK_TFLOPS:
    if name.lower() in device_kind.lower():
      return tflops
  return None


def model_flops_per_token(n_params: int, num_layers: int, d_model: int, length: int) -> float:
  """PaLM's model FLOPs of one training token (forward and backward)."""
  return 6.0 * n_params + 12.0 * num_layers * d_model * length


def make_config(opts):
  """experiments/base.py's config for ``opts.model`` on the copy task, sized by ``opts``."""
  from attnlab import configs
  config = configs.load_config_file(f"{_DEFAULT_CONFIG}:model={opts.model},task=copy")
  config.model.d_model, config.model.num_layers = opts.d_model, opts.num_layers
  config.model.num_heads, config.model.max_len = opts.num_heads, opts.length
  config.model.attention_impl = opts.attention_impl or None
  config.train_min_length = config.train_max_length = opts.length
  config.eval_lengths = [opts.length]
  config.batch_size = opts.batch
  config.compute_dtype = opts.dtype
  return config


def train_step_fn(config):
  """(the jitted train step, a fresh state, one batch, the setup) for ``config``."""
  import jax
  from attnlab.train import config as config_lib
  from attnlab.train import loop
  setup = config_lib.build(config)
  state = jax.jit(loop.create_fn(config, setup))()  # the loop's own state and update
  batch = jax.jit(setup.task.sample, static_argnums=(1, 2))(
      jax.random.PRNGKey(1), config.batch_size, config.train_min_length)
  fn = jax.jit(loop.update_fn(config, setup), donate_argnums=0)
  return fn, state, batch, setup


def matmul_tflops(n: int, repeats: int = 5) -> float:
  """Measured TFLOP/s of an n x n x n bfloat16 matrix product (float32 accumulation)."""
  import jax
  import jax.numpy as jnp
  a, b = (jax.random.normal(k, (n, n), jnp.bfloat16) for k in jax.random.split(jax.random.key(0)))
  dot = jax.jit(lambda a, b: jnp.dot(a, b, preferred_element_type=jnp.float32))
  timing.block(dot(a, b))
  median, _ = timing.median_seconds(lambda: dot(a, b), repeats=repeats, warmup=1)
  return 2.0 * n**3 / median / 1e12


def main(args: list[str], json_path: str | None) -> list[dict]:
  parser = argparse.ArgumentParser(prog="bench.py mfu", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--model", default="decoder", choices=("decoder", "transformer"))
  parser.add_argument("--d_model", type=int, default=2048)
  parser.add_argument("--num_layers", type=int, default=4)
  parser.add_argument("--num_heads", type=int, default=16)
  parser.add_argument("--length", type=int, default=2048)
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float32"))
  parser.add_argument("--attention_impl", default="", help="'' = the default for the backend")
  parser.add_argument("--steps", type=int, default=10, help="timed steps (after 2 untimed)")
  parser.add_argument("--matmul", type=int, default=8192, help="size of the reference product")
  opts = parser.parse_args(args)
  if min(opts.d_model, opts.num_layers, opts.num_heads, opts.length, opts.batch, opts.steps,
         opts.matmul) < 1:
    raise SystemExit("bench.py mfu: sizes and --steps must be >= 1")
  import jax
  config = make_config(opts)
  fn, state, batch, setup = train_step_fn(config)
  rng = jax.random.PRNGKey(2)
  t0 = time.perf_counter()
  state, metrics = fn(state, batch, rng)
  timing.block(metrics)
  compile_s = time.perf_counter() - t0
  state, metrics = fn(state, batch, rng)
  timing.block(metrics)
  times = []
  for _ in range(opts.steps):
    t0 = time.perf_counter()
    state, metrics = fn(state, batch, rng)
    timing.block(metrics)
    times.append(time.perf_counter() - t0)
  step_s = sorted(times)[len(times) // 2]

  counts = setup.param_counts
  n_params = counts["total"] - counts.get("embed", 0)
  tokens = opts.batch * opts.length
  flops = model_flops_per_token(n_params, opts.num_layers, opts.d_model, opts.length) * tokens
  device = jax.devices()[0]
  peak = peak_tflops(device.device_kind)
  achieved = flops / step_s / 1e12
  matmul = matmul_tflops(opts.matmul)
  record = {"device": device.device_kind, "backend": jax.default_backend(), "model": opts.model,
            "d_model": opts.d_model, "num_layers": opts.num_layers, "num_heads": opts.num_heads,
            "length": opts.length, "batch": opts.batch, "dtype": opts.dtype,
            "attention_impl": opts.attention_impl or "default", "params": counts["total"],
            "n_params": n_params, "model_tflop_per_step": flops / 1e12, "compile_s": compile_s,
            "step_s": step_s, "times": times, "tokens_per_s": tokens / step_s,
            "model_tflops": achieved, "peak_tflops": peak if peak else "unknown",
            "mfu": achieved / peak if peak else "unknown", "matmul_size": opts.matmul,
            "matmul_tflops": matmul, "vs_matmul": achieved / matmul,
            "loss": float(metrics["loss"])}
  print(f"{opts.model} d_model {opts.d_model}, {opts.num_layers} layers, {opts.num_heads} heads, "
        f"length {opts.length}, batch {opts.batch}, {opts.dtype}; median of {opts.steps} steps; "
        f"device {device.device_kind} (bf16 peak {record['peak_tflops']} TFLOP/s); "
        f"{time.strftime('%Y-%m-%d %H:%M')}")
  print(timing.format_table([record], ["device", "params", "step_s", "tokens_per_s",
                                       "model_tflops", "peak_tflops", "mfu", "matmul_tflops",
                                       "vs_matmul"]))
  timing.write_json(json_path, [record])
  return [record]
