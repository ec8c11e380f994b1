"""Compilation cost of a length-generalisation trial, without and with length buckets.

  python scripts/bench.py compile [--json FILE] [--models lstm transformer] [--steps 300]
      [--test_every 1] [--cache] [--no_off]

One trial of ``experiments/length_generalization.py:task=parity,model=M`` (train lengths 1..40
drawn per step, evaluation once at the end on the test lengths 41..500, every ``--test_every``-th
of them) run as ``scripts/train.py`` in a fresh process, once with ``length_buckets=off`` (one
program per distinct length: today's way) and once with the default (``auto``: powers of two),
side by side, the compilation cache off so that every program is compiled. With ``--cache`` a
third and fourth run share a fresh cache directory: the second of them is the identical run in a
new workdir, which should load its programs instead of compiling them.

Per run (from its summary.json and metrics.jsonl): ``compilations`` and ``compile_s`` (JAX's own
monitoring events), ``cache_hits``, ``wall_s`` (the process), ``eval_s`` (the final evaluation over
all test lengths), ``steps_per_s`` (median logged throughput after the first window) and
``full_compile_share``: compile_s over the estimated wall time of the experiment's full-size
schedule (20,000 steps at this steps/s, plus this run's compile and evaluation seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks import timing

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FULL_STEPS = 20_000  # experiments/length_generalization.py, full size


def _read_jsonl(path):
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def run_trial(model: str, steps: int, test_every: int, buckets: str, cache: str,
              workdir: str) -> dict:
  """One training run in a fresh process; its compile figures and timings."""
  lengths = ",".join(str(n) for n in range(41, 501, test_every))
  cmd = [sys.executable, os.path.join(ROOT, "scripts", "train.py"),
         f"--config={ROOT}/experiments/length_generalization.py:task=parity,model={model}",
         f"--workdir={workdir}", f"--config.num_steps={steps}",
         f"--config.length_buckets={buckets}", f"--config.eval_lengths={lengths}",
         f"--config.log_every={max(1, steps // 10)}", f"--config.checkpoint_every={steps}"]
  start = time.perf_counter()
  proc = subprocess.run(cmd, capture_output=True, text=True,
                        env={**os.environ, "ATTNLAB_COMPILATION_CACHE": cache})
  wall = time.perf_counter() - start
  if proc.returncode != 0:  # a fatal signal's report starts at "Fatal Python error"
    fatal = proc.stderr.find("Fatal Python error")
    raise RuntimeError(f"{model} ({buckets}) failed (exit {proc.returncode}): "
                       f"{proc.stderr[fatal:fatal + 1500] if fatal >= 0 else proc.stderr[-2000:]}")
  with open(os.path.join(workdir, "summary.json")) as f:
    summary = json.load(f)
  logged = _read_jsonl(os.path.join(workdir, "metrics.jsonl"))[1:]
  steps_per_s = statistics.median(r["steps_per_s"] for r in logged)
  full = FULL_STEPS / steps_per_s + summary["compile_s"] + summary["eval_s"]
  return {"model": model, "buckets": buckets, "cache": "off" if cache == "off" else "shared",
          "test_lengths": len(range(41, 501, test_every)), "steps": steps,
          "compilations": summary["compilations"], "compile_s": summary["compile_s"],
          "cache_hits": summary["compile_cache_hits"], "wall_s": wall,
          "eval_s": summary["eval_s"], "steps_per_s": steps_per_s,
          "full_compile_share": summary["compile_s"] / full,
          "accuracy": summary["final_eval"] and statistics.fmean(
              m["accuracy"] for m in summary["final_eval"]["lengths"].values())}


def main(args: list[str], json_path: str | None) -> list[dict]:
  parser = argparse.ArgumentParser(prog="bench.py compile")
  parser.add_argument("--models", nargs="+", default=["lstm", "transformer"])
  parser.add_argument("--steps", type=int, default=300, help="training steps per run")
  parser.add_argument("--test_every", type=int, default=1,
                      help="evaluate every n-th test length of 41..500 (1: all 460)")
  parser.add_argument("--no_off", action="store_true",
                      help="skip the buckets-off run (with all 460 test lengths XLA:CPU 0.10.2 "
                           "segfaults after some hundreds of programs in one process)")
  parser.add_argument("--cache", action="store_true",
                      help="also two runs sharing a fresh compilation cache")
  opts = parser.parse_args(args)
  if opts.steps < 1 or opts.test_every < 1:
    raise SystemExit("bench.py compile: --steps and --test_every must be >= 1")
  records = []
  with tempfile.TemporaryDirectory(prefix="attnlab_bench_compile_") as root:
    for model in opts.models:
      runs = ([] if opts.no_off else [("off", "off")]) + [("auto", "off")]
      if opts.cache:
        cache = os.path.join(root, f"cache_{model}")
        runs += [("auto", cache), ("auto", cache)]
      for i, (buckets, cache) in enumerate(runs):
        record = run_trial(model, opts.steps, opts.test_every, buckets, cache,
                           os.path.join(root, f"{model}_{i}"))
        print(json.dumps(record), flush=True)
        records.append(record)
  print(f"({time.strftime('%Y-%m-%d %H:%M')}; {os.cpu_count()} CPUs; full-size schedule "
        f"{FULL_STEPS} steps)")
  print(timing.format_table(records, ["model", "buckets", "cache", "test_lengths", "steps",
                                      "compilations", "compile_s", "cache_hits", "wall_s",
                                      "eval_s", "steps_per_s", "full_compile_share",
                                      "accuracy"]))
  timing.write_json(json_path, records)
  return records
