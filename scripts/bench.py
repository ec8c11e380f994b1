#!/usr/bin/env python3
"""Benchmarks: ``python scripts/bench.py SUITE [--json FILE] [suite options]``.

Suites: recurrent, products, attention, data, loop, checkpoint, compile, experiment, long_context.
Each prints a table of medians and ratios against its named reference, and with ``--json FILE``
writes a list of records. The first line printed names the glibc malloc settings of the
environment, if any (docs/benchmarks.md: ``MALLOC_ARENA_MAX=1 ...``).
"""

import argparse
import importlib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

# Suite name -> module under scripts/benchmarks/ exposing ``main(args: list[str], json_path)``.
SUITES = {
    "recurrent": "benchmarks.recurrent",
    "products": "benchmarks.products",
    "attention": "benchmarks.attention",
    "data": "benchmarks.data",
    "loop": "benchmarks.loop",
    "checkpoint": "benchmarks.checkpoint",
    "compile": "benchmarks.compile",
    "experiment": "benchmarks.experiment",
    "long_context": "benchmarks.long_context",
}


def main(argv):
  # -h after the suite name goes to the suite's own parser (its options).
  parser = argparse.ArgumentParser(description=__doc__, add_help=not argv or argv[0] not in SUITES,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("suite", choices=sorted(SUITES))
  parser.add_argument("--json", default=None, help="write the records to this file")
  args, rest = parser.parse_known_args(argv)
  settings = " ".join(f"{k}={v}" for k, v in os.environ.items() if k.startswith("MALLOC_"))
  print(f"malloc: {settings or 'default'}", flush=True)
  module = importlib.import_module(SUITES[args.suite])
  module.main(rest, args.json)


if __name__ == "__main__":
  main(sys.argv[1:])
