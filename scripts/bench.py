#!/usr/bin/env python3
"""Benchmarks: ``python scripts/bench.py SUITE [--json FILE] [suite options]``.

Suites: recurrent, attention, data, loop, checkpoint. Each prints a table of medians and ratios
against its named reference, and with ``--json FILE`` writes a list of records.
"""

import argparse
import importlib
import sys

# Suite name -> module under attnlab.bench exposing ``main(args: list[str], json_path) -> list[dict]``.
SUITES = {
    "recurrent": "attnlab.bench.recurrent",
    "attention": "attnlab.bench.attention",
    "data": "attnlab.bench.data",
    "loop": "attnlab.bench.loop",
    "checkpoint": "attnlab.bench.checkpoint",
}


def main(argv):
  # -h after the suite name goes to the suite's own parser (its options).
  parser = argparse.ArgumentParser(description=__doc__, add_help=not argv or argv[0] not in SUITES,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("suite", choices=sorted(SUITES))
  parser.add_argument("--json", default=None, help="write the records to this file")
  args, rest = parser.parse_known_args(argv)
  module = importlib.import_module(SUITES[args.suite])
  module.main(rest, args.json)


if __name__ == "__main__":
  main(sys.argv[1:])
