#!/usr/bin/env python3
"""Benchmarks: ``python scripts/bench.py SUITE [--json FILE] [--malloc reuse] [suite options]``.

Suites: recurrent, products, attention, data, loop, checkpoint, compile, experiment, long_context,
mfu.
Each prints a table of medians and ratios against its named reference, and with ``--json FILE``
writes a list of records. ``--malloc reuse`` runs the whole benchmark (attnlab and its references
alike) with glibc malloc keeping freed memory (attnlab/cli/malloc.py); the first line printed says
which malloc the run had.
"""

import argparse
import importlib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from attnlab.cli import malloc as cpu_malloc  # noqa: E402

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
    "mfu": "benchmarks.mfu",
}


def main(argv):
  # -h after the suite name goes to the suite's own parser (its options).
  parser = argparse.ArgumentParser(description=__doc__, add_help=not argv or argv[0] not in SUITES,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("suite", choices=sorted(SUITES))
  parser.add_argument("--json", default=None, help="write the records to this file")
  parser.add_argument("--malloc", choices=cpu_malloc.CHOICES, default="default",
                      help="reuse: glibc malloc keeps freed memory (no page faults per call)")
  args, rest = parser.parse_known_args(argv)
  print(f"malloc: {cpu_malloc.use(args.malloc, [os.path.abspath(__file__), *argv])}", flush=True)
  module = importlib.import_module(SUITES[args.suite])
  module.main(rest, args.json)


if __name__ == "__main__":
  main(sys.argv[1:])
